//! Code objects, interpreter frames, and walking the interpreter: its thread states and
//! each thread's frame chain.

use crate::error::{Error, Result};
use crate::process::BuiltinType;
use crate::snapshot::{CodeInfo, FrameInfo, ObjId, StackSource, ThreadInfo, Value};

use super::view::{span, words};
use super::Decoder;

/// Bound on frames per thread and on thread-list length: a corrupt `previous` or `next`
/// pointer forming a loop must not hang the reader.
const MAX_FRAMES: usize = 1_000_000;
const MAX_THREADS: usize = 100_000;

/// What a frame slot (or `f_executable`, `f_funcobj`) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRef {
    Null,
    Object(u64),
    /// A `_PyStackRef` tagged int (3.14+): an int that is no object (an exception
    /// handler's saved lasti, 3.15's index of a for loop over a list or tuple).
    TaggedInt(i64),
}

/// Decode a slot word: a plain pointer (3.11-3.13) or a `_PyStackRef` (3.14+), where NULL
/// is 1, bit 0 marks a borrowed or immortal reference, `(bits & 3) == 3` a tagged int and
/// `(bits & 3) == 2` 3.15's invalid (error) reference.
pub fn slot_ref(stackrefs: bool, bits: u64) -> SlotRef {
    if !stackrefs {
        return if bits == 0 { SlotRef::Null } else { SlotRef::Object(bits) };
    }
    match bits & 3 {
        3 => SlotRef::TaggedInt((bits as i64) >> 2),
        2 => SlotRef::Null,
        _ => match bits & !1 {
            0 => SlotRef::Null,
            p => SlotRef::Object(p),
        },
    }
}

impl<'a> Decoder<'a> {
    /// The object address a slot word refers to, or 0 (NULL, a tagged int).
    pub fn slot_addr(&self, bits: u64) -> u64 {
        match slot_ref(self.py.layout.stackrefs, bits) {
            SlotRef::Object(p) => p,
            _ => 0,
        }
    }

    /// The node for the slot word `bits` found at `at`: a tagged int becomes an int node
    /// of its own (keyed by the slot's address, odd, so never a real object's).
    fn slot_object(&mut self, bits: u64, at: u64) -> Option<ObjId> {
        match slot_ref(self.py.layout.stackrefs, bits) {
            SlotRef::Null => None,
            SlotRef::Object(p) => self.object(p),
            SlotRef::TaggedInt(v) => {
                let pseudo = at | 1;
                if let Some(&id) = self.graph.index.get(&pseudo) {
                    return Some(id);
                }
                Some(self.synthetic_int(pseudo, v))
            }
        }
    }

    /// A frame's code object (or what stands in its place), as an address.
    pub fn frame_executable(&mut self, frame: u64) -> Result<u64> {
        let bits = self.ptr(frame + self.layout().frame_executable as u64)?;
        Ok(self.slot_addr(bits))
    }

    /// A code object, with its bytecode deoptimized back to `co_code`.
    pub fn read_code(&mut self, addr: u64) -> Result<CodeInfo> {
        let l = self.layout();
        let v = self.view_spans(
            addr,
            &[
                span(l.var_object_size, 8),
                span(l.code_consts, 8),
                span(l.code_names, 8),
                span(l.code_exceptiontable, 8),
                span(l.code_flags, 4),
                span(l.code_argcount, 4),
                span(l.code_posonlyargcount, 4),
                span(l.code_kwonlyargcount, 4),
                span(l.code_stacksize, 4),
                span(l.code_firstlineno, 4),
                span(l.code_nlocals, 4),
                span(l.code_localsplusnames, 8),
                span(l.code_localspluskinds, 8),
                span(l.code_filename, 8),
                span(l.code_name, 8),
                span(l.code_qualname, 8),
                span(l.code_linetable, 8),
            ],
        )?;
        let nunits = v.i64(l.var_object_size)?;
        if nunits < 0 || nunits as usize > self.limits.max_len {
            return Err(Error::corrupt(addr, "code size"));
        }
        let adaptive = self.read(addr + l.code_code_adaptive as u64, 2 * nunits as usize)?;
        let table = crate::opcodes::table_for(self.py.version.major, self.py.version.minor)
            .ok_or_else(|| Error::NoOpcodeTable { version: self.py.version.to_string() })?;
        let code = crate::bytecode::deoptimize(&adaptive, table);
        let s = |me: &mut Self, off: usize| -> Result<String> { Ok(me.read_str(v.ptr(off)?)?.as_text().into_owned()) };
        let strs = |me: &mut Self, off: usize| -> Result<Vec<String>> {
            let t = v.ptr(off)?;
            let n = me.len_of(t)?;
            let items = me.words_at(t + l.tuple_items as u64, n)?;
            items.into_iter().map(|item| Ok(me.read_str(item)?.as_text().into_owned())).collect()
        };
        let bytes = |me: &mut Self, off: usize| -> Result<Vec<u8>> {
            let b = v.ptr(off)?;
            let n = me.len_of(b)?;
            me.read(b + l.bytes_data as u64, n)
        };
        let consts_addr = v.ptr(l.code_consts)?;
        let nconsts = self.len_of(consts_addr)?;
        let consts = self.pointer_array(consts_addr + l.tuple_items as u64, nconsts)?;
        Ok(CodeInfo {
            name: s(self, l.code_name)?,
            qualname: s(self, l.code_qualname)?,
            filename: s(self, l.code_filename)?,
            first_line: v.i32(l.code_firstlineno)?,
            flags: v.u32(l.code_flags)?,
            argcount: v.u32(l.code_argcount)?,
            posonlyargcount: v.u32(l.code_posonlyargcount)?,
            kwonlyargcount: v.u32(l.code_kwonlyargcount)?,
            stacksize: v.u32(l.code_stacksize)?,
            nlocals: v.u32(l.code_nlocals)?,
            localsplus_names: strs(self, l.code_localsplusnames)?,
            localsplus_kinds: bytes(self, l.code_localspluskinds)?,
            code,
            linetable: bytes(self, l.code_linetable)?,
            exceptiontable: bytes(self, l.code_exceptiontable)?,
            consts,
            names: strs(self, l.code_names)?,
        })
    }

    /// The code object behind a frame's `f_executable`, or None when it is not code
    /// (3.13 shim frames).
    pub fn frame_code(&mut self, frame: u64) -> Result<Option<(u64, ObjId)>> {
        let code_addr = self.frame_executable(frame)?;
        if code_addr == 0 || !self.is_exact(code_addr, BuiltinType::Code)? {
            return Ok(None);
        }
        let id = self.object(code_addr).ok_or_else(|| Error::corrupt(frame, "frame without code"))?;
        if matches!(self.graph.get(id).value, Value::Opaque) {
            // Decode now: the frame reader needs names, kinds and bytecode.
            let code = self.read_code(code_addr)?;
            let type_addr = self.ptr(code_addr + self.layout().object_type as u64)?;
            let type_id = self.object(type_addr);
            let obj = &mut self.graph.objects[id as usize];
            obj.value = Value::Code(Box::new(code));
            obj.type_id = type_id;
            self.queue.retain(|&(q, _)| q != id);
        }
        Ok(Some((code_addr, id)))
    }

    /// Read one interpreter frame. `suspended` frames (generators not running) always have
    /// a valid `stacktop`.
    pub fn read_frame(&mut self, frame: u64, suspended: bool) -> Result<FrameInfo> {
        self.read_frame_with(frame, suspended, true)
    }

    /// `with_stack` false: the value stack is left empty (to be read with [`Self::restack`]
    /// once its depth is known) — nothing of it is queued for decoding.
    fn read_frame_with(&mut self, frame: u64, suspended: bool, with_stack: bool) -> Result<FrameInfo> {
        let l = self.layout();
        let Some((code_addr, code_id)) = self.frame_code(frame)? else {
            return Err(Error::corrupt(frame, "frame whose executable is not a code object"));
        };
        let Value::Code(code) = &self.graph.get(code_id).value else { return Err(Error::corrupt(code_addr, "code")) };
        let nlocalsplus = code.localsplus_names.len();
        let stacksize = code.stacksize as usize;
        let (code_bytes, linetable, first_line, exc_table) =
            (code.code.clone(), code.linetable.clone(), code.first_line, code.exceptiontable.clone());
        // The instruction: where it is (3.13+) or the one before it (3.11, 3.12).
        let instr_field = l.frame_instr_ptr.or(l.frame_prev_instr);
        let hdr = self.view_spans(
            frame,
            &[
                span(l.frame_owner, 1),
                span(instr_field, 8),
                match (l.frame_stacktop, l.frame_stackpointer) {
                    (Some(at), _) => span(at, 4),
                    (None, at) => span(at, 8),
                },
                span(l.frame_globals, 8),
                span(l.frame_locals, 8),
                span(l.frame_funcobj, 8),
            ],
        )?;
        let owner = hdr.i8(l.frame_owner)? as i32;
        let instr = hdr.ptr(instr_field)?;
        let code_start = code_addr + l.code_code_adaptive as u64;
        let lasti = (instr as i64 - code_start as i64) / 2;
        let nunits = code_bytes.len() as i64 / 2;
        if lasti < -1 || lasti > nunits {
            return Err(Error::corrupt(frame, format!("instruction pointer outside its code ({lasti} of {nunits})")));
        }
        let table = crate::opcodes::table_for(self.py.version.major, self.py.version.minor)
            .ok_or_else(|| Error::NoOpcodeTable { version: self.py.version.to_string() })?;
        let instrs = crate::bytecode::instructions(&code_bytes, table);
        let instr_start = instrs.iter().find(|i| (i.offset as i64) <= lasti && lasti < (i.offset + i.size) as i64).map(|i| i.offset).unwrap_or(0);
        let line = if lasti < 0 { Some(first_line) } else { crate::bytecode::line_for_offset(&linetable, first_line, lasti as u32) };
        let slots_at = frame + l.frame_localsplus as u64;
        let slots = self.words_at(slots_at, nlocalsplus + stacksize)?;
        let localsplus: Vec<Option<ObjId>> =
            slots[..nlocalsplus].iter().enumerate().map(|(i, &p)| self.slot_object(p, slots_at + 8 * i as u64)).collect();
        // The saved stack top, as a slot index: an int (3.11-3.13, -1 while the frame
        // runs) or a pointer (3.14+, stored before every call that can escape, so valid
        // in callers and in a frame waiting in C). Out of range: not saved.
        let stacktop = match (l.frame_stacktop, l.frame_stackpointer) {
            (Some(at), _) => hdr.i32(at)?,
            (None, at) => {
                let sp = hdr.ptr(at)?;
                match sp.checked_sub(slots_at) {
                    Some(d) if d % 8 == 0 && d / 8 <= (nlocalsplus + stacksize) as u64 => (d / 8) as i32,
                    _ => -1,
                }
            }
        };
        let static_depth = || -> Option<usize> {
            if lasti < 0 {
                return None;
            }
            let entries = crate::bytecode::parse_exception_table(&exc_table);
            let depths = crate::bytecode::stack_depths(&code_bytes, &entries, table).ok()?;
            depths.get(instr_start as usize).copied().flatten().map(|d| d as usize).filter(|&d| d <= stacksize)
        };
        let saved = (stacktop >= nlocalsplus as i32 && stacktop <= (nlocalsplus + stacksize) as i32 && (suspended || stacktop > 0))
            .then(|| stacktop as usize - nlocalsplus);
        // A running frame's stack pointer (3.14+) is the one stored at its last call that
        // could escape: right while it waits in that call (where it equals the static
        // depth, the call's inputs included), stale once it runs bytecode again.
        let saved = saved.filter(|&d| suspended || !l.stackrefs || static_depth().is_none_or(|s| s == d));
        let (depth, stack_from) = if !with_stack {
            (0, StackSource::Unknown)
        } else if let Some(d) = saved {
            (d, StackSource::Stacktop)
        } else if lasti >= 0 {
            match static_depth() {
                Some(d) => (d, StackSource::Static),
                None => (0, StackSource::Unknown),
            }
        } else {
            (0, StackSource::Stacktop)
        };
        // Where CALL_FUNCTION_EX pops its argument tuple (and kwargs dict) before making
        // the call (3.11), during the call those slots hold stale pointers (a temporary
        // such as `f(*range(3))` is already freed). They are not the frame's: leave them empty.
        let stale_top = match instrs.iter().find(|i| i.offset == instr_start) {
            Some(ins) if stack_from == StackSource::Static && l.call_function_ex_pops_early && table.info(ins.opcode).name == "CALL_FUNCTION_EX" => {
                1 + (ins.arg & 1) as usize
            }
            _ => 0,
        };
        let stack = (0..depth)
            .map(|i| if i + stale_top >= depth { None } else { self.slot_object(slots[nlocalsplus + i], slots_at + 8 * (nlocalsplus + i) as u64) })
            .collect();
        let globals_addr = hdr.ptr(l.frame_globals)?;
        let locals_addr = hdr.ptr(l.frame_locals)?;
        // Module and class bodies keep their names in f_locals: always read that mapping.
        let locals_mapping = self.object(locals_addr);
        let globals = if locals_addr == globals_addr || self.globals_wanted(globals_addr)? { self.object(globals_addr) } else { None };
        let function = self.slot_object(hdr.ptr(l.frame_funcobj)?, frame + l.frame_funcobj as u64);
        let generator = if owner == l.frame_owned_by_generator { self.object(frame - l.gen_iframe as u64) } else { None };
        let through_init_cleanup = self.init_cleanup_inner.contains(&frame);
        Ok(FrameInfo {
            addr: frame,
            code: code_id,
            owner,
            lasti,
            instr_start,
            line,
            localsplus,
            stack,
            stack_from,
            globals,
            locals_mapping,
            function,
            generator,
            through_init_cleanup,
        })
    }

    /// Re-read a frame's value stack with a known depth (a frame stopped between
    /// instructions whose depth was worked out for its resume point).
    pub fn restack(&mut self, f: &mut FrameInfo, depth: usize) -> Result<()> {
        let l = self.layout();
        let Value::Code(code) = &self.graph.get(f.code).value else { return Err(Error::corrupt(f.addr, "frame without code")) };
        let n = code.localsplus_names.len();
        if depth > code.stacksize as usize {
            return Err(Error::corrupt(f.addr, format!("stack depth {depth} beyond co_stacksize")));
        }
        let base = f.addr + l.frame_localsplus as u64 + 8 * n as u64;
        let raw = self.read(base, 8 * depth.max(1))?;
        f.stack = words(&raw).take(depth).enumerate().map(|(i, p)| self.slot_object(p, base + 8 * i as u64)).collect();
        f.stack_from = StackSource::Static;
        Ok(())
    }

    /// Addresses of every thread state of the main interpreter, head first.
    pub fn thread_states(&mut self) -> Result<Vec<u64>> {
        let l = self.py.layout;
        let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        if interp == 0 {
            return Err(Error::NotPython { pid: self.py.pid, detail: "the interpreter is not initialised (or is finalising)".into() });
        }
        let mut out = Vec::new();
        let mut t = self.ptr(interp + l.interp_threads_head as u64)?;
        while t != 0 {
            if out.len() >= MAX_THREADS || out.contains(&t) {
                return Err(Error::corrupt(t, "thread list does not end"));
            }
            out.push(t);
            t = self.ptr(t + l.tstate_next as u64)?;
        }
        Ok(out)
    }

    /// The frame a thread state is executing, or 0.
    pub fn current_frame(&mut self, tstate: u64) -> Result<u64> {
        let l = self.py.layout;
        if let Some(at) = l.tstate_current_frame {
            return self.ptr(tstate + at as u64);
        }
        let cframe = self.field_ptr(tstate, l.tstate_cframe)?;
        if cframe == 0 {
            return Ok(0);
        }
        self.field_ptr(cframe, l.cframe_current_frame)
    }

    /// Whether `code` is 3.13+'s `_Py_InitCleanup`: a code object compiled into the
    /// interpreter (not on the heap), named `__init__` in a file named `__init__`. Its
    /// symbol is local (only in `.symtab`, too slow to parse here), so it is recognised
    /// by those traits once and then by address.
    fn is_init_cleanup(&mut self, code: u64) -> Result<bool> {
        if let Some(known) = self.init_cleanup_code {
            return Ok(known == code);
        }
        let l = self.py.layout;
        if !l.init_cleanup_shim {
            return Ok(false); // no such shim in this version: spare the walk over the maps
        }
        let binary = &self.py.binary;
        let in_image = self.py.maps.iter().any(|m| m.start <= code && code < m.end && m.path.as_deref() == Some(binary.as_path()));
        if code == 0 || !in_image || !self.is_exact(code, BuiltinType::Code)? {
            return Ok(false);
        }
        let (name, file) = (self.ptr(code + l.code_name as u64)?, self.ptr(code + l.code_filename as u64)?);
        let is_shim = self.read_str(name)?.as_text() == "__init__" && self.read_str(file)?.as_text() == "__init__";
        if is_shim {
            self.init_cleanup_code = Some(code);
        }
        Ok(is_shim)
    }

    /// Frame addresses of a thread, innermost first, without C-stack shim frames.
    pub fn frame_chain(&mut self, tstate: u64) -> Result<Vec<u64>> {
        let l = self.py.layout;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut f = self.current_frame(tstate)?;
        while f != 0 {
            // Count every frame visited (skipped shims too): a racing or dying process
            // can leave a `previous` chain that loops.
            if seen.len() >= MAX_FRAMES || !seen.insert(f) {
                return Err(Error::corrupt(f, "frame chain does not end (the process changed while being read)"));
            }
            let owner = self.read(f + l.frame_owner as u64, 1)?[0] as i8 as i32;
            let code_addr = self.frame_executable(f)?;
            // Entry frames of the C stack (3.12+) and 3.15's base frame of each thread are
            // the interpreter's own, not the program's.
            let interpreters = l.frame_owned_by_cstack == Some(owner) || l.frame_owned_by_interpreter == Some(owner);
            if self.is_init_cleanup(code_addr)? {
                // Not a Python frame of the program (Python's own tracebacks skip it):
                // it only hands `self` to the caller when `__init__` returns.
                if let Some(&inner) = out.last() {
                    self.init_cleanup_inner.insert(inner);
                }
            } else if !interpreters && code_addr != 0 && self.is_exact(code_addr, BuiltinType::Code)? {
                // (Not `frame_code`: frames the caller leaves out, such as a restore's
                // own, must not bring their code into the snapshot.)
                out.push(f);
            }
            f = self.ptr(f + l.frame_previous as u64)?;
        }
        Ok(out)
    }

    /// `thread_id` and `native_thread_id` of a thread state.
    fn thread_ids(&mut self, tstate: u64) -> Result<(u64, u64)> {
        let l = self.py.layout;
        let v = self.view(tstate, &[l.tstate_thread_id, l.tstate_native_thread_id])?;
        Ok((v.u64(l.tstate_thread_id)?, v.u64(l.tstate_native_thread_id)?))
    }

    /// Read one thread completely.
    pub fn read_thread(&mut self, tstate: u64, is_main: bool) -> Result<ThreadInfo> {
        let chain = self.frame_chain(tstate)?;
        self.read_thread_with(tstate, is_main, true, &chain)
    }

    /// As [`Self::read_thread`], but the innermost frame's value stack is left empty: a
    /// thread stopped between instructions has its stack pointer in a register, and what
    /// lies above the real depth (arguments of a call that just returned) is freed memory
    /// that must not be decoded. [`Self::restack`] reads it once the depth is known.
    pub fn read_thread_between_instructions(&mut self, tstate: u64, is_main: bool) -> Result<ThreadInfo> {
        let chain = self.frame_chain(tstate)?;
        self.read_thread_with(tstate, is_main, false, &chain)
    }

    /// As [`Self::read_thread_between_instructions`], with only the innermost frames of its
    /// chain (`chain`, innermost first, from [`Self::frame_chain`]).
    pub fn read_thread_part_between_instructions(&mut self, tstate: u64, is_main: bool, chain: &[u64]) -> Result<ThreadInfo> {
        self.read_thread_with(tstate, is_main, false, chain)
    }

    fn read_thread_with(&mut self, tstate: u64, is_main: bool, innermost_stack: bool, chain: &[u64]) -> Result<ThreadInfo> {
        let (thread_id, native_thread_id) = self.thread_ids(tstate)?;
        let mut frames = Vec::with_capacity(chain.len());
        for (i, f) in chain.iter().enumerate() {
            // Only the innermost frame is executing; callers of Python functions saved
            // their stack pointer, callers through C did not (static depth then).
            frames.push(self.read_frame_with(*f, i > 0, i > 0 || innermost_stack)?);
        }
        let handled_exception = self.handled_exception(tstate)?;
        let name = ptrace_tools::threads::thread_name(self.py.pid, native_thread_id as i32);
        Ok(ThreadInfo { tstate, thread_id, native_thread_id, name, is_main, frames, handled_exception, thread_object: None, held_rlocks: vec![] })
    }

    /// A thread with only the given frames (innermost first), all of them callers.
    pub fn read_thread_frames(&mut self, tstate: u64, chain: &[u64]) -> Result<ThreadInfo> {
        let (thread_id, native_thread_id) = self.thread_ids(tstate)?;
        let mut frames = Vec::with_capacity(chain.len());
        for f in chain {
            frames.push(self.read_frame(*f, true)?);
        }
        let handled_exception = self.handled_exception(tstate)?;
        Ok(ThreadInfo {
            tstate,
            thread_id,
            native_thread_id,
            name: None,
            is_main: true,
            frames,
            handled_exception,
            thread_object: None,
            held_rlocks: vec![],
        })
    }

    /// The topmost non-None exception of the thread's exc_info chain.
    fn handled_exception(&mut self, tstate: u64) -> Result<Option<ObjId>> {
        let l = self.py.layout;
        let mut item = self.ptr(tstate + l.tstate_exc_info as u64)?;
        let mut hops = 0;
        while item != 0 && hops < 10_000 {
            let exc = self.ptr(item + l.err_stack_item_exc_value as u64)?;
            if exc != 0 && exc != self.py.symbols.none {
                return Ok(self.object(exc));
            }
            item = self.ptr(item + l.err_stack_item_previous as u64)?;
            hops += 1;
        }
        Ok(None)
    }

    /// Every thread, main thread first.
    pub fn read_threads(&mut self) -> Result<Vec<ThreadInfo>> {
        let states = self.thread_states()?;
        let main = self.main_thread_state()?;
        let mut out = Vec::new();
        for t in states {
            out.push(self.read_thread(t, Some(t) == main)?);
        }
        out.sort_by_key(|t| !t.is_main);
        Ok(out)
    }

    /// The main thread's state: the thread whose native id is the process id.
    pub(crate) fn main_thread_state(&mut self) -> Result<Option<u64>> {
        let l = self.py.layout;
        for t in self.thread_states()? {
            let native = self.ptr(t + l.tstate_native_thread_id as u64)?;
            if native as i32 == self.py.pid {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// Python-level thread names from `threading._active` (best effort).
    pub fn thread_names(&mut self) -> Result<Vec<(u64, String)>> {
        let l = self.py.layout;
        let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        let modules = self.ptr(interp + l.interp_modules as u64)?;
        let mut out = Vec::new();
        let Some(threading) = self.lookup_str_key(modules, "threading")? else { return Ok(out) };
        let tdict = self.ptr(threading + l.module_dict as u64)?;
        let Some(active) = self.lookup_str_key(tdict, "_active")? else { return Ok(out) };
        for (k, v) in self.dict_entries(active)? {
            let Some(ident) = self.read_u64_int(k)? else { continue };
            // (its type is read as for any object: a thread whose object is gone fails here)
            self.ptr(v + l.object_type as u64)?;
            let Some(id) = self.object(v) else { continue };
            self.drain()?;
            if let Value::Instance { dict: Some(d), .. } = self.graph.get(id).value.clone() {
                self.drain()?;
                if let Value::Dict(items) = self.graph.get(d).value.clone() {
                    for (k, v) in items {
                        if self.graph.str_of(k).as_deref() == Some("_name") {
                            if let Some(name) = self.graph.str_of(v) {
                                out.push((ident, name.into_owned()));
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// `threading._active` as (ident, address of the Thread object), and how many threads
    /// wait in `threading._limbo` (started, not running yet). Empty when `threading` was
    /// never imported.
    pub fn threading_registry(&mut self) -> Result<(Vec<(u64, u64)>, usize)> {
        let l = self.py.layout;
        let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        let modules = self.ptr(interp + l.interp_modules as u64)?;
        let Some(threading) = self.lookup_str_key(modules, "threading")? else { return Ok((vec![], 0)) };
        let tdict = self.ptr(threading + l.module_dict as u64)?;
        let mut active = Vec::new();
        if let Some(dict) = self.lookup_str_key(tdict, "_active")? {
            for (k, v) in self.dict_entries(dict)? {
                if let Some(ident) = self.read_u64_int(k)? {
                    active.push((ident, v));
                }
            }
        }
        let starting = match self.lookup_str_key(tdict, "_limbo")? {
            Some(dict) => self.dict_entries(dict)?.len(),
            None => 0,
        };
        Ok((active, starting))
    }

    /// The interpreter's `atexit.register()`ed callbacks, in registration order, as a
    /// synthetic list of `(func, args, kwargs-or-None)` tuples (None without any). The
    /// pseudo addresses are inside the interpreter state, where no object starts.
    pub fn atexit_callbacks(&mut self, interp: u64) -> Result<Option<ObjId>> {
        let l = self.py.layout;
        let array = self.ptr(interp + l.interp_atexit_callbacks as u64)?;
        let Some(ncallbacks) = l.interp_atexit_ncallbacks else {
            // 3.14+: a list of (func, args, kwargs) tuples, the last registered first.
            let count = if array == 0 { 0 } else { self.len_of(array)? };
            if count == 0 {
                return Ok(None);
            }
            if count > 1 << 16 {
                return Err(Error::corrupt(interp, format!("{count} atexit callbacks")));
            }
            let items = self.ptr(array + l.list_items as u64)?;
            let entries = self.words_at(items, count)?.into_iter().rev().filter_map(|t| self.object(t)).collect();
            let list = interp + l.interp_atexit_callbacks as u64 + 1;
            return Ok(Some(self.synthetic(list, BuiltinType::List, Value::List(entries))));
        };
        let raw = self.read(interp + ncallbacks as u64, 4)?;
        let count = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if array == 0 || count <= 0 {
            return Ok(None);
        }
        if count > 1 << 16 {
            return Err(Error::corrupt(interp, format!("{count} atexit callbacks")));
        }
        let none = self.none_id();
        let mut entries = Vec::new();
        for (i, entry) in self.words_at(array, count as usize)?.into_iter().enumerate() {
            if entry == 0 {
                continue; // unregistered
            }
            let func = self.field_ptr(entry, l.atexit_callback_func)?;
            let args = self.field_ptr(entry, l.atexit_callback_args)?;
            let kwargs = self.field_ptr(entry, l.atexit_callback_kwargs)?;
            let (Some(func), Some(args)) = (self.object(func), self.object(args)) else { continue };
            let Some(kwargs) = self.object(kwargs).or(none) else { continue };
            let pseudo = interp + l.interp_atexit_callbacks as u64 + 1 + i as u64;
            entries.push(self.synthetic(pseudo, BuiltinType::Tuple, Value::Tuple(vec![func, args, kwargs])));
        }
        let list = interp + ncallbacks as u64 + 1;
        Ok(Some(self.synthetic(list, BuiltinType::List, Value::List(entries))))
    }

    fn lookup_str_key(&mut self, dict: u64, key: &str) -> Result<Option<u64>> {
        if dict == 0 {
            return Ok(None);
        }
        for (k, v) in self.dict_entries(dict)? {
            if self.read_str(k).map(|s| s.as_text() == key).unwrap_or(false) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod slot_tests {
    use super::{slot_ref, SlotRef};

    #[test]
    fn stackref_words() {
        let obj = 0x7f00_1234_5670u64;
        // 3.11-3.13: plain pointers
        assert_eq!(slot_ref(false, 0), SlotRef::Null);
        assert_eq!(slot_ref(false, obj), SlotRef::Object(obj));
        // 3.14+: NULL is 1, bit 0 is a borrowed reference, 3 tags an int, 2 is invalid
        assert_eq!(slot_ref(true, 1), SlotRef::Null);
        assert_eq!(slot_ref(true, 0), SlotRef::Null);
        assert_eq!(slot_ref(true, obj), SlotRef::Object(obj));
        assert_eq!(slot_ref(true, obj | 1), SlotRef::Object(obj));
        assert_eq!(slot_ref(true, (30 << 2) | 3), SlotRef::TaggedInt(30));
        assert_eq!(slot_ref(true, ((-5i64 as u64) << 2) | 3), SlotRef::TaggedInt(-5));
        assert_eq!(slot_ref(true, 2), SlotRef::Null);
        // the _Py_InitCleanup shim's static code object, seen as 0x898121
        assert_eq!(slot_ref(true, 0x898121), SlotRef::Object(0x898120));
    }
}
