//! Files: open files (`open()`'s text wrapper, its buffered layer, the raw FileIO),
//! in-memory files (StringIO, BytesIO), and the standard streams. Everything read of
//! `_io`'s C structures is read here.

use crate::error::{Error, Result};
use crate::layouts::Layout;
use crate::process::BuiltinType;
use crate::snapshot::reducers::Reducer;
use crate::snapshot::{ObjId, PyStr, Value};

use super::registry::{CType, Instance};
use super::view::{span, units32, Span};
use super::{int_value, reducer_global, Decoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Text,
    Buffered,
    Raw,
}

const BUFFERED_NAMES: &[&str] = &["_io.BufferedReader", "_io.BufferedWriter", "_io.BufferedRandom"];

pub static TEXT_FILE: CType = CType {
    names: &["_io.TextIOWrapper"],
    fields: |l| {
        vec![
            span(l.textio_buffer, 8),
            span(l.textio_encoding, 8),
            span(l.textio_errors, 8),
            span(l.textio_readnl, 8),
            span(l.textio_readtranslate, 1),
            span(l.textio_pending_bytes, 8),
            span(l.textio_decoded_chars, 8),
            span(l.textio_decoded_chars_used, 8),
            span(l.buffered_raw_pos, 0),
            span(l.fileio_fd, 0),
        ]
    },
    decode: |d, i| d.decode_open_file(i, FileKind::Text),
    shallow: false,
};

fn buffered_fields(l: &Layout) -> Vec<Span> {
    vec![
        span(l.buffered_raw, 8),
        span(l.buffered_raw_pos, 8),
        span(l.buffered_pos, 8),
        span(l.buffered_read_end, 8),
        span(l.buffered_write_pos, 8),
        span(l.buffered_write_end, 8),
        span(l.buffered_buffer, 8),
        span(l.fileio_fd, 0),
    ]
}

pub static BUFFERED_FILE: CType =
    CType { names: BUFFERED_NAMES, fields: buffered_fields, decode: |d, i| d.decode_open_file(i, FileKind::Buffered), shallow: false };

pub static RAW_FILE: CType =
    CType { names: &["_io.FileIO"], fields: |l| vec![span(l.fileio_fd, 4)], decode: |d, i| d.decode_open_file(i, FileKind::Raw), shallow: false };

pub static STRING_IO: CType = CType {
    names: &["_io.StringIO"],
    fields: |l| {
        let mut fields = vec![
            span(l.stringio_buf, 8),
            span(l.stringio_pos, 8),
            span(l.stringio_string_size, 8),
            span(l.stringio_state, 4),
            span(l.stringio_closed, 1),
            span(l.stringio_readnl, 8),
            span(l.stringio_dict, 8),
        ];
        // Text written only at the end sits in a writer (3.12+) or an accumulator (3.11).
        if l.stringio_writer_ptr.is_some() {
            fields.push(span(l.stringio_writer_ptr, 8));
        } else if l.stringio_writer_buffer.is_some() {
            fields.extend([span(l.stringio_writer_buffer, 8), span(l.stringio_writer_pos, 8)]);
        } else {
            fields.extend([span(l.stringio_accu_large, 8), span(l.stringio_accu_small, 8)]);
        }
        fields
    },
    decode: |d, i| d.decode_string_io(i),
    shallow: false,
};

pub static BYTES_IO: CType = CType {
    names: &["_io.BytesIO"],
    fields: |l| vec![span(l.bytesio_buf, 8), span(l.bytesio_pos, 8), span(l.bytesio_string_size, 8), span(l.bytesio_dict, 8)],
    decode: |d, i| d.decode_bytes_io(i),
    shallow: false,
};

impl<'a> Decoder<'a> {
    /// An open file, reopened in the new process by `pyteleport._reducers.reopen` at the
    /// same position; what its buffers hold but have not written yet is written there
    /// first (the original never flushes it: it is ended, or it writes it to its own
    /// copy after a checkpoint). Only with the descriptor table read at the stop.
    fn decode_open_file(&mut self, inst: &Instance, known: FileKind) -> Result<Value> {
        let l = self.layout();
        let addr = inst.addr;
        let Some(files) = self.open_files.clone() else { return Ok(Value::Opaque) };
        let text = (known == FileKind::Text).then_some(addr);
        let buffered = match known {
            FileKind::Text => Some(inst.view.ptr(l.textio_buffer)?),
            FileKind::Buffered => Some(addr),
            FileKind::Raw => None,
        };
        if let Some(b) = buffered {
            if !BUFFERED_NAMES.contains(&self.type_name_of(b)?.as_str()) {
                return Ok(Value::Opaque);
            }
        }
        let raw = match buffered {
            Some(b) => self.ptr(b + l.buffered_raw as u64)?,
            None => addr,
        };
        if self.type_name_of(raw)? != "_io.FileIO" {
            return Ok(Value::Opaque);
        }
        let raw_type = self.ptr(raw + l.object_type as u64)?;
        let raw_shape = self.type_shape(raw_type)?;
        let shown_name = match self.instance_attribute(raw, raw_type, &raw_shape, "name")? {
            Some(n) if self.is_exact(n, BuiltinType::Str)? => n,
            _ => return Ok(Value::Opaque), // opened from a descriptor number: nothing to reopen
        };
        let kind = match known {
            FileKind::Text => "text",
            FileKind::Buffered => "buffered",
            FileKind::Raw => "raw",
        };
        let fd = self.view_spans(raw, &[span(l.fileio_fd, 4)])?.i32(l.fileio_fd)?;
        let mode_attr = match text {
            Some(t) => {
                let t_type = self.ptr(t + l.object_type as u64)?;
                let t_shape = self.type_shape(t_type)?;
                self.instance_attribute(t, t_type, &t_shape, "mode")?.filter(|&m| self.is_exact(m, BuiltinType::Str).unwrap_or(false))
            }
            None => None,
        };
        let mut args: Vec<ObjId> = Vec::new();
        let mut next_pseudo = addr + 2;
        let mut synth = |me: &mut Self, kind: BuiltinType, value: Value| {
            next_pseudo += 1;
            me.synthetic(next_pseudo - 1, kind, value)
        };
        let text_value = |s: &str| Value::Str(PyStr::Text(s.into()));
        let kind_id = synth(self, BuiltinType::Str, text_value(kind));
        let shown_id = self.object(shown_name).ok_or_else(|| Error::corrupt(addr, "file without a name"))?;
        let Some(open) = files.get(&fd) else {
            // Closed: made as a closed file of the same kind.
            let mode = match mode_attr {
                Some(m) => self.object(m),
                None => Some(synth(self, BuiltinType::Str, text_value(if kind == "text" { "r" } else { "rb" }))),
            };
            let args = synth(self, BuiltinType::Tuple, Value::Tuple([Some(kind_id), Some(shown_id), mode].into_iter().flatten().collect()));
            let callable = synth(self, BuiltinType::Function, reducer_global(Reducer::ClosedFile));
            return Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None });
        };
        // The standard descriptors are the new process's own (a second opening of the
        // same file would write over them).
        if fd <= 2 {
            return Ok(Value::Opaque);
        }
        let Some(path) = open.reopenable_path().map(str::to_string) else { return Ok(Value::Opaque) };
        let mode = match mode_attr {
            Some(m) => self.object(m).ok_or_else(|| Error::corrupt(addr, "file mode"))?,
            None => {
                let append = open.flags & libc::O_APPEND as u32 != 0;
                let base = match (open.flags & libc::O_ACCMODE as u32) as i32 {
                    libc::O_WRONLY => {
                        if append {
                            "a"
                        } else {
                            "w"
                        }
                    }
                    libc::O_RDWR => {
                        if append {
                            "a+"
                        } else {
                            "r+"
                        }
                    }
                    _ => "r",
                };
                let mode = format!("{base}{}", if kind == "text" { "" } else { "b" });
                synth(self, BuiltinType::Str, Value::Str(PyStr::Text(mode)))
            }
        };
        // Position: the descriptor's offset, less what the buffer read ahead (or plus
        // what it holds unwritten), less the text decoded ahead and not handed out.
        let mut position = open.pos as i64;
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_at = position;
        if let Some(b) = buffered {
            let bv =
                if b == addr { None } else { Some(self.view_spans(b, &buffered_fields(l).into_iter().filter(|s| s.1 > 0).collect::<Vec<_>>())?) };
            let bv = bv.as_ref().unwrap_or(&inst.view);
            let (raw_pos, pos, read_end) = (bv.i64(l.buffered_raw_pos)?, bv.i64(l.buffered_pos)?, bv.i64(l.buffered_read_end)?);
            let (write_pos, write_end) = (bv.i64(l.buffered_write_pos)?, bv.i64(l.buffered_write_end)?);
            if (read_end != -1 || write_end != -1) && raw_pos >= 0 {
                position -= raw_pos - pos;
            }
            if write_end != -1 && write_end > write_pos && write_pos >= 0 && write_end - write_pos < (64 << 20) {
                let buf = bv.ptr(l.buffered_buffer)?;
                pending = self.read(buf + write_pos as u64, (write_end - write_pos) as usize)?;
                pending_at = open.pos as i64 - raw_pos.max(0) + write_pos;
            }
        }
        let (mut encoding, mut errors, mut newline) = (None, None, None);
        if text.is_some() {
            let tv = &inst.view;
            let encoding_addr = tv.ptr(l.textio_encoding)?;
            let encoding_name = if encoding_addr != 0 && self.is_exact(encoding_addr, BuiltinType::Str)? {
                self.read_str(encoding_addr)?.as_text().to_lowercase().replace('_', "-")
            } else {
                String::new()
            };
            encoding = self.object(encoding_addr);
            errors = self.object(tv.ptr(l.textio_errors)?);
            newline = match self.object(tv.ptr(l.textio_readnl)?) {
                Some(nl) => Some(nl),
                None if tv.u8(l.textio_readtranslate)? != 0 => None,
                None => Some(synth(self, BuiltinType::Str, text_value(""))),
            };
            // Text written but not passed to the buffer yet (encoded bytes, or ASCII str).
            let chunks = tv.ptr(l.textio_pending_bytes)?;
            if chunks != 0 {
                let items = if self.is_exact(chunks, BuiltinType::List)? {
                    let n = self.len_of(chunks)?;
                    let items = self.ptr(chunks + l.list_items as u64)?;
                    (0..n as u64).map(|i| self.ptr(items + 8 * i)).collect::<Result<Vec<_>>>()?
                } else {
                    vec![chunks]
                };
                let mut text_pending = Vec::new();
                for c in items {
                    if self.is_exact(c, BuiltinType::Bytes)? {
                        let n = self.len_of(c)?;
                        text_pending.extend(self.read(c + l.bytes_data as u64, n)?);
                    } else if self.is_exact(c, BuiltinType::Str)? {
                        text_pending.extend(self.read_str(c)?.as_text().as_bytes());
                    }
                }
                if pending.is_empty() {
                    pending_at = position;
                }
                position += text_pending.len() as i64;
                pending.extend(text_pending);
            }
            let decoded = tv.ptr(l.textio_decoded_chars)?;
            if decoded != 0 {
                let used = tv.i64(l.textio_decoded_chars_used)?.max(0) as usize;
                let ahead: Vec<u32> = self.read_str(decoded)?.code_points().into_iter().skip(used).collect();
                let ahead_bytes = match encoding_name.as_str() {
                    "utf-8" | "utf8" => ahead.iter().map(|&c| char::from_u32(c).map_or(3, char::len_utf8)).sum::<usize>(),
                    "ascii" | "us-ascii" | "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => ahead.len(),
                    _ if ahead.is_empty() => 0,
                    _ => return Ok(Value::Opaque), // cannot tell how many bytes were read ahead
                };
                position -= ahead_bytes as i64;
            }
        }
        let none = self.none_id();
        let path_id = synth(self, BuiltinType::Str, Value::Str(PyStr::Text(path)));
        let position_id = synth(self, BuiltinType::Int, int_value(position.max(0)));
        let pending_id = synth(self, BuiltinType::Bytes, Value::Bytes(pending));
        let pending_at_id = synth(self, BuiltinType::Int, int_value(pending_at.max(0)));
        args.extend([kind_id, path_id, mode, position_id]);
        for o in [encoding, errors, newline] {
            args.extend(o.or(none));
        }
        args.extend([shown_id, pending_id, pending_at_id]);
        if args.len() != 10 {
            return Err(Error::corrupt(addr, "file without its None"));
        }
        let args = synth(self, BuiltinType::Tuple, Value::Tuple(args));
        let callable = synth(self, BuiltinType::Function, reducer_global(Reducer::Reopen));
        Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
    }

    /// A closed in-memory file of the given kind ("text" or "buffered").
    fn closed_memory_file(&mut self, addr: u64, kind: &str) -> Value {
        let kind = self.synthetic_str(addr + 2, kind);
        self.call_reducer(addr + 3, Reducer::ClosedFile, vec![kind, kind, kind], None)
    }

    /// A StringIO through its own `__setstate__`: (value, newline, position, __dict__).
    /// A closed one is made closed.
    fn decode_string_io(&mut self, inst: &Instance) -> Result<Value> {
        const STATE_ACCUMULATING: i32 = 2;
        let (l, addr, v) = (self.layout(), inst.addr, &inst.view);
        let none = self.none_id();
        let mut state = Vec::new();
        let (size, pos) = (v.i64(l.stringio_string_size)?, v.i64(l.stringio_pos)?);
        if v.u8(l.stringio_closed)? != 0 {
            return Ok(self.closed_memory_file(addr, "text"));
        }
        if !(0..=self.limits.max_len as i64).contains(&size) {
            return Err(Error::corrupt(addr, "StringIO size out of range"));
        }
        let mut chars: Vec<u32> = Vec::with_capacity(size as usize);
        if v.i32(l.stringio_state)? == STATE_ACCUMULATING {
            // Written only at its end so far: the text sits in a writer (3.12+) or an
            // accumulator of string lists (3.11), not in the character buffer; 3.14+
            // points at its writer.
            if l.stringio_writer_ptr.is_some() {
                let writer = v.ptr(l.stringio_writer_ptr)?;
                if writer != 0 {
                    let buffer = self.ptr(writer + l.unicode_writer_buffer as u64)?;
                    if buffer != 0 {
                        let used = self.i64_at(writer + l.unicode_writer_pos as u64)?.max(0) as usize;
                        chars.extend(self.read_str(buffer)?.code_points().into_iter().take(used));
                    }
                }
            } else if l.stringio_writer_buffer.is_some() {
                let buffer = v.ptr(l.stringio_writer_buffer)?;
                if buffer != 0 {
                    let used = v.i64(l.stringio_writer_pos)?.max(0) as usize;
                    chars.extend(self.read_str(buffer)?.code_points().into_iter().take(used));
                }
            } else {
                for list_at in [l.stringio_accu_large, l.stringio_accu_small] {
                    let list = v.ptr(list_at)?;
                    if list == 0 {
                        continue;
                    }
                    let n = self.len_of(list)?;
                    let items = self.ptr(list + l.list_items as u64)?;
                    for i in 0..n as u64 {
                        let item = self.ptr(items + 8 * i)?;
                        chars.extend(self.read_str(item)?.code_points());
                    }
                }
            }
        } else if size > 0 {
            let buf = v.ptr(l.stringio_buf)?;
            chars.extend(units32(&self.read(buf, size as usize * 4)?));
        }
        let text = match chars.iter().map(|&c| char::from_u32(c)).collect::<Option<String>>() {
            Some(t) => PyStr::Text(t),
            None => PyStr::CodePoints(chars),
        };
        state.push(self.synthetic(addr + 2, BuiltinType::Str, Value::Str(text)));
        state.extend(self.object(v.ptr(l.stringio_readnl)?).or(none));
        state.push(self.synthetic_int(addr + 3, pos.max(0)));
        state.extend(self.object(v.ptr(l.stringio_dict)?).or(none));
        self.memory_file_state(inst, state, 4)
    }

    /// A BytesIO through its own `__setstate__`: (value, position, __dict__).
    fn decode_bytes_io(&mut self, inst: &Instance) -> Result<Value> {
        let (l, addr, v) = (self.layout(), inst.addr, &inst.view);
        let none = self.none_id();
        let mut state = Vec::new();
        let (size, pos) = (v.i64(l.bytesio_string_size)?, v.i64(l.bytesio_pos)?);
        let buf = v.ptr(l.bytesio_buf)?;
        if buf == 0 {
            return Ok(self.closed_memory_file(addr, "buffered")); // closed: its buffer is gone
        }
        if !(0..=self.limits.max_bytes as i64).contains(&size) {
            return Err(Error::corrupt(addr, "BytesIO size out of range"));
        }
        let data = self.read(buf + l.bytes_data as u64, size as usize)?;
        state.push(self.synthetic(addr + 2, BuiltinType::Bytes, Value::Bytes(data)));
        state.push(self.synthetic_int(addr + 3, pos.max(0)));
        state.extend(self.object(v.ptr(l.bytesio_dict)?).or(none));
        self.memory_file_state(inst, state, 3)
    }

    /// `cls()` then `__setstate__(state)`.
    fn memory_file_state(&mut self, inst: &Instance, state: Vec<ObjId>, expected: usize) -> Result<Value> {
        let addr = inst.addr;
        if state.len() != expected {
            return Err(Error::corrupt(addr, "in-memory file without its None"));
        }
        let state = self.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(state));
        self.reduce_by_type(addr, inst.type_addr, addr + 6, vec![], Some(state))
    }

    /// Record the standard streams of `sys` so they are carried by name.
    pub fn learn_stdio(&mut self) -> Result<()> {
        let l = self.layout();
        let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        let sysdict = self.ptr(interp + l.interp_sysdict as u64)?;
        let mut named = Vec::new();
        for (k, v) in self.dict_entries(sysdict)? {
            let key = self.read_str(k)?.as_text().into_owned();
            if matches!(key.as_str(), "stdin" | "stdout" | "stderr" | "__stdin__" | "__stdout__" | "__stderr__") && v != self.py.symbols.none {
                named.push((key, v));
            }
        }
        // The process's own streams are `sys.__stdout__` and friends; `sys.stdout` counts
        // only while it is that same object (not a StringIO of redirect_stdout, which is
        // carried like any other object).
        for (key, v) in &named {
            let own = key.starts_with("__") || named.iter().any(|(k2, v2)| *k2 == format!("__{key}__") && v2 == v);
            if own {
                self.stdio.entry(*v).or_insert_with(|| key.trim_matches('_').to_string());
            }
        }
        Ok(())
    }
}

impl Decoder<'_> {
    /// What `sys.stdin` (a TextIOWrapper over a BufferedReader) holds that the program has
    /// not read yet: the rest of the decoded text chunk, then the binary buffer's unread
    /// bytes. The file itself is already past them, so the new process must get them first.
    pub fn stdin_read_ahead(&mut self, sysdict: u64) -> Result<Vec<u8>> {
        let d = self;
        let l = d.py.layout;
        let mut out = Vec::new();
        let Some(stdin) = d.dict_entries(sysdict)?.into_iter().find_map(|(k, v)| (d.read_str(k).ok()?.as_text() == "stdin").then_some(v)) else {
            return Ok(out);
        };
        let type_name_of = |d: &mut Decoder<'_>, obj: u64| -> Result<String> {
            let t = d.ptr(obj + l.object_type as u64)?;
            let name = d.ptr(t + l.type_name as u64)?;
            d.c_string(name, 64)
        };
        if type_name_of(d, stdin)? != "_io.TextIOWrapper" {
            return Ok(out);
        }
        let chars = d.ptr(stdin + l.textio_decoded_chars as u64)?;
        if chars != 0 {
            let used = d.ptr(stdin + l.textio_decoded_chars_used as u64)? as usize;
            let text = d.read_str(chars)?.code_points();
            let rest: String = text.iter().skip(used).filter_map(|&c| char::from_u32(c)).collect();
            out.extend(rest.as_bytes());
        }
        let buffered = d.ptr(stdin + l.textio_buffer as u64)?;
        if type_name_of(d, buffered)? == "_io.BufferedReader" {
            let (pos, end) = (d.ptr(buffered + l.buffered_pos as u64)? as i64, d.ptr(buffered + l.buffered_read_end as u64)? as i64);
            if end > pos && pos >= 0 && end - pos < (64 << 20) {
                let buf = d.ptr(buffered + l.buffered_buffer as u64)?;
                out.extend(d.read(buf + pos as u64, (end - pos) as usize)?);
            }
        }
        Ok(out)
    }

    /// Output the target has written to `sys.stdout`/`sys.stderr` but not yet flushed:
    /// (fd, bytes), oldest first. Moving it must not lose it.
    pub fn stdio_pending_output(&mut self) -> Result<Vec<(i32, Vec<u8>)>> {
        let d = self;
        let l = d.py.layout;
        d.learn_stdio()?;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (&addr, name) in d.stdio.clone().iter() {
            if !matches!(name.as_str(), "stdout" | "stderr") || !seen.insert(addr) {
                continue;
            }
            let buffered = d.ptr(addr + l.textio_buffer as u64)?;
            let raw = d.ptr(buffered + l.buffered_raw as u64)?;
            let fd = d.ptr(raw + l.fileio_fd as u64)? as i32;
            let mut bytes = Vec::new();
            // The binary buffer holds older data than the text layer's pending chunks.
            let (start, end) = (d.ptr(buffered + l.buffered_write_pos as u64)? as i64, d.ptr(buffered + l.buffered_write_end as u64)? as i64);
            if end > start && start >= 0 && end - start < (64 << 20) {
                let buf = d.ptr(buffered + l.buffered_buffer as u64)?;
                bytes.extend(d.read(buf + start as u64, (end - start) as usize)?);
            }
            let pending = d.ptr(addr + l.textio_pending_bytes as u64)?;
            if pending != 0 {
                if let Some(id) = d.object(pending) {
                    d.drain()?;
                    let chunks: Vec<ObjId> = match &d.graph.get(id).value {
                        Value::List(items) => items.clone(),
                        _ => vec![id],
                    };
                    for c in chunks {
                        match &d.graph.get(c).value {
                            Value::Bytes(b) => bytes.extend(b),
                            Value::Str(s) => bytes.extend(s.as_text().as_bytes()),
                            _ => {}
                        }
                    }
                }
            }
            if !bytes.is_empty() {
                out.push((fd, bytes));
            }
        }
        out.sort_by_key(|(fd, _)| *fd);
        Ok(out)
    }
}
