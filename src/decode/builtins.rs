//! The builtin types: numbers, strings, containers, iterators, descriptors, exceptions.

use crate::error::{Error, Result};
use crate::process::BuiltinType;
use crate::snapshot::{PyStr, Value};

use super::view::{span, units32, words};
use super::Decoder;

impl<'a> Decoder<'a> {
    pub(super) fn decode_builtin(&mut self, addr: u64, kind: BuiltinType) -> Result<Value> {
        let l = self.layout();
        let s = &self.py.symbols;
        Ok(match kind {
            BuiltinType::NoneType => Value::None,
            BuiltinType::Ellipsis => Value::Ellipsis,
            BuiltinType::NotImplemented => Value::NotImplemented,
            BuiltinType::Bool => Value::Bool(addr == s.true_),
            BuiltinType::Int => self.read_int(addr)?,
            BuiltinType::Float => Value::Float(f64::from_bits(self.ptr(addr + l.float_value as u64)?)),
            BuiltinType::Complex => {
                let v = self.view_spans(addr, &[span(l.complex_value, 16)])?;
                Value::Complex(v.f64(l.complex_value)?, v.f64(l.complex_value + 8)?)
            }
            BuiltinType::Str => Value::Str(self.read_str(addr)?),
            BuiltinType::Bytes => {
                let n = self.len_of(addr)?;
                Value::Bytes(self.read(addr + l.bytes_data as u64, n)?)
            }
            BuiltinType::ByteArray => {
                let n = self.len_of(addr)?;
                let start = self.ptr(addr + l.bytearray_start as u64)?;
                Value::ByteArray(if n == 0 { vec![] } else { self.read(start, n)? })
            }
            BuiltinType::Tuple => {
                let n = self.len_of(addr)?;
                Value::Tuple(self.pointer_array(addr + l.tuple_items as u64, n)?)
            }
            BuiltinType::List => {
                let n = self.len_of(addr)?;
                let items = self.ptr(addr + l.list_items as u64)?;
                Value::List(if n == 0 { vec![] } else { self.pointer_array(items, n)? })
            }
            BuiltinType::Dict | BuiltinType::FrozenDict => {
                let entries = self.dict_entries(addr)?;
                Value::Dict(entries.into_iter().filter_map(|(k, v)| Some((self.object(k)?, self.object(v)?))).collect())
            }
            BuiltinType::Set | BuiltinType::FrozenSet => {
                let items = self.set_entries(addr)?;
                let ids = items.into_iter().filter_map(|k| self.object(k)).collect();
                if kind == BuiltinType::Set {
                    Value::Set(ids)
                } else {
                    Value::FrozenSet(ids)
                }
            }
            BuiltinType::Cell => {
                let r = self.ptr(addr + l.cell_ref as u64)?;
                Value::Cell(self.object(r))
            }
            BuiltinType::Type => self.decode_type(addr)?,
            BuiltinType::Module => self.decode_module(addr)?,
            BuiltinType::Code => Value::Code(Box::new(self.read_code(addr)?)),
            BuiltinType::Function => self.decode_function(addr)?,
            BuiltinType::Method => {
                let v = self.view(addr, &[l.method_func, l.method_self])?;
                match (self.object(v.ptr(l.method_func)?), self.object(v.ptr(l.method_self)?)) {
                    (Some(func), Some(self_)) => Value::Method { func, self_ },
                    _ => Value::Opaque,
                }
            }
            BuiltinType::CFunction => {
                let v = self.view(addr, &[l.cfunction_def, l.cfunction_self, l.cfunction_module])?;
                let def = v.ptr(l.cfunction_def)?;
                let name_ptr = self.ptr(def + l.methoddef_name as u64)?;
                let name = self.c_string(name_ptr, 256)?;
                let self_addr = v.ptr(l.cfunction_self)?;
                let module_addr = v.ptr(l.cfunction_module)?;
                let module = if module_addr != 0 && self.is_exact(module_addr, BuiltinType::Str)? {
                    Some(self.read_str(module_addr)?.as_text().into_owned())
                } else {
                    None
                };
                // A module as m_self is a plain function; anything else is a bound builtin method.
                let self_ = if self_addr != 0 && !self.is_exact(self_addr, BuiltinType::Module)? { self.object(self_addr) } else { None };
                Value::BuiltinFunction { name, self_, module }
            }
            BuiltinType::Generator | BuiltinType::Coroutine | BuiltinType::AsyncGenerator => self.decode_generator(addr, kind)?,
            BuiltinType::StaticMethod | BuiltinType::ClassMethod => {
                let (name, callable, dict) = if kind == BuiltinType::StaticMethod {
                    ("staticmethod", l.staticmethod_callable, l.staticmethod_dict)
                } else {
                    ("classmethod", l.classmethod_callable, l.classmethod_dict)
                };
                let v = self.view(addr, &[callable, dict])?;
                match self.object(v.ptr(callable)?) {
                    Some(func) => Value::Rebuilt { type_name: name.into(), args: vec![Some(func)], dict: self.object(v.ptr(dict)?) },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Property => {
                let fields = [l.property_get, l.property_set, l.property_del, l.property_doc];
                let v = self.view(addr, &fields)?;
                let args = fields.iter().map(|&f| Ok(self.object(v.ptr(f)?))).collect::<Result<_>>()?;
                Value::Rebuilt { type_name: "property".into(), args, dict: None }
            }
            BuiltinType::Slice => {
                let fields = [l.slice_start, l.slice_stop, l.slice_step];
                let v = self.view(addr, &fields)?;
                let args = fields.iter().map(|&f| Ok(self.object(v.ptr(f)?))).collect::<Result<_>>()?;
                Value::Rebuilt { type_name: "slice".into(), args, dict: None }
            }
            BuiltinType::Range => {
                let v = self.view(addr, &[l.range_start, l.range_stop, l.range_step])?;
                match (self.object(v.ptr(l.range_start)?), self.object(v.ptr(l.range_stop)?), self.object(v.ptr(l.range_step)?)) {
                    (Some(start), Some(stop), Some(step)) => Value::Range { start, stop, step },
                    _ => Value::Opaque,
                }
            }
            BuiltinType::RangeIter => {
                let mut fields = vec![Some(l.range_iter_start), Some(l.range_iter_step), Some(l.range_iter_len)];
                fields.extend(l.range_iter_index.map(Some));
                let v = self.view(addr, &fields)?;
                let index = match l.range_iter_index {
                    Some(at) => v.i64(at)?,
                    None => 0,
                };
                Value::RangeIter { start: v.i64(l.range_iter_start)?, step: v.i64(l.range_iter_step)?, len: v.i64(l.range_iter_len)?, index }
            }
            BuiltinType::ListIter | BuiltinType::TupleIter | BuiltinType::StrIter => {
                let v = self.view(addr, &[l.seq_iter_index, l.seq_iter_seq])?;
                Value::SeqIter { seq: self.object(v.ptr(l.seq_iter_seq)?), index: v.i64(l.seq_iter_index)? }
            }
            BuiltinType::Enumerate => {
                let v = self.view(addr, &[l.enum_index, l.enum_iter, l.enum_long_index])?;
                match self.object(v.ptr(l.enum_iter)?) {
                    Some(iter) => Value::Enumerate { iter, index: v.i64(l.enum_index)?, long_index: self.object(v.ptr(l.enum_long_index)?) },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Zip => {
                let v = self.view_spans(addr, &[span(l.zip_iters, 8), span(l.zip_strict, 4)])?;
                match self.object(v.ptr(l.zip_iters)?) {
                    Some(iters) => Value::Zip { iters, strict: v.i32(l.zip_strict)? != 0 },
                    None => Value::Opaque,
                }
            }
            // Iterators a loop may be consuming; made again as their own pickle forms do
            // (read only for a capture: a dump shows them by type and address).
            BuiltinType::Map | BuiltinType::Filter | BuiltinType::Reversed | BuiltinType::ListRevIter | BuiltinType::SetIter if !self.limits.deep => {
                Value::Opaque
            }
            BuiltinType::SetIter => {
                // As its pickle form: an iterator over a list of the items still to come,
                // in the set's own table order.
                let v = self.view(addr, &[l.setiter_set, l.setiter_pos, l.setiter_len])?;
                let set = v.ptr(l.setiter_set)?;
                let (pos, left) = (v.i64(l.setiter_pos)?, v.i64(l.setiter_len)?);
                let items = if set == 0 || left <= 0 || pos < 0 {
                    vec![]
                } else {
                    let rest = self.set_entries_from(set, pos as usize)?;
                    rest.into_iter().take(left as usize).filter_map(|(_, k)| self.object(k)).collect()
                };
                let list = self.synthetic(addr + 2, BuiltinType::List, Value::List(items));
                Value::SeqIter { seq: Some(list), index: 0 }
            }
            BuiltinType::Map => {
                let v = self.view(addr, &[l.map_func, l.map_iters])?;
                let iters = v.ptr(l.map_iters)?;
                let mut args = vec![self.object(v.ptr(l.map_func)?)];
                let n = self.len_of(iters)?;
                args.extend(self.pointer_array(iters + l.tuple_items as u64, n)?.into_iter().map(Some));
                Value::Rebuilt { type_name: "map".into(), args, dict: None }
            }
            BuiltinType::Filter => {
                let v = self.view(addr, &[l.filter_func, l.filter_it])?;
                let args = vec![self.object(v.ptr(l.filter_func)?), self.object(v.ptr(l.filter_it)?)];
                Value::Rebuilt { type_name: "filter".into(), args, dict: None }
            }
            BuiltinType::Reversed | BuiltinType::ListRevIter => {
                let (index_at, seq_at) =
                    if kind == BuiltinType::Reversed { (l.reversed_index, l.reversed_seq) } else { (l.seq_iter_index, l.seq_iter_seq) };
                let v = self.view(addr, &[index_at, seq_at])?;
                let type_addr = self.py.symbols.type_addr.get(&BuiltinType::Reversed).copied().unwrap_or(0);
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "no reversed type"))?;
                // Exhausted: its sequence is gone; reversed(()) is as empty.
                let seq = match self.object(v.ptr(seq_at)?) {
                    Some(seq) => seq,
                    None => self.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(vec![])),
                };
                let args = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![seq]));
                let index = self.synthetic_int(addr + 4, v.i64(index_at)?);
                Value::Reduce { callable, args, state: Some(index), listitems: None, dictitems: None }
            }
            BuiltinType::DictKeyIter | BuiltinType::DictValueIter | BuiltinType::DictItemIter => {
                let v = self.view(addr, &[l.dictiter_dict, l.dictiter_pos, l.dictiter_len])?;
                Value::DictIter { dict: self.object(v.ptr(l.dictiter_dict)?), pos: v.i64(l.dictiter_pos)?, len: v.i64(l.dictiter_len)? }
            }
            BuiltinType::BaseException => self.decode_exception(addr)?,
            BuiltinType::Descriptor | BuiltinType::MemberDescr => {
                let v = self.view(addr, &[l.descr_type, l.descr_name])?;
                let name = self.read_str(v.ptr(l.descr_name)?)?.as_text().into_owned();
                match self.object(v.ptr(l.descr_type)?) {
                    Some(owner) => Value::Descriptor { owner, name },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Object => Value::Object,
            _ => Value::Opaque,
        })
    }

    pub(super) fn decode_exception(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let v = self.view_spans(
            addr,
            &[
                span(l.exception_args, 8),
                span(l.exception_dict, 8),
                span(l.exception_context, 8),
                span(l.exception_cause, 8),
                span(l.exception_notes, 8),
                span(l.exception_suppress_context, 1),
            ],
        )?;
        Ok(Value::Exception {
            args: self.object(v.ptr(l.exception_args)?),
            dict: self.object(v.ptr(l.exception_dict)?),
            context: self.object(v.ptr(l.exception_context)?),
            cause: self.object(v.ptr(l.exception_cause)?),
            suppress_context: v.u8(l.exception_suppress_context)? != 0,
            notes: self.object(v.ptr(l.exception_notes)?),
        })
    }

    pub fn read_int(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let (negative, ndigits) = match l.long_lv_tag {
            Some(at) => {
                let tag = self.ptr(addr + at as u64)?;
                ((tag & 3) == 2, (tag >> 3) as usize)
            }
            None => {
                let size = self.i64_at(addr + l.var_object_size as u64)?;
                (size < 0, size.unsigned_abs() as usize)
            }
        };
        if ndigits > self.limits.max_len {
            return Err(Error::Limit(format!("int of {ndigits} digits")));
        }
        let raw = self.read(addr + l.long_digits as u64, 4 * ndigits.max(1))?;
        let digits: Vec<u32> = units32(&raw).take(ndigits).map(|d| d & 0x3fff_ffff).collect();
        Ok(Value::Int { negative, digits })
    }

    /// An int object's value as a u64 (thread idents, native ids): base 2**30 digits,
    /// least significant first; None for a negative number.
    pub fn read_u64_int(&mut self, addr: u64) -> Result<Option<u64>> {
        Ok(match self.read_int(addr)? {
            Value::Int { negative: false, digits } => Some(digits.iter().rev().fold(0u64, |acc, &d| (acc << 30) | d as u64)),
            _ => None,
        })
    }

    pub fn read_str(&mut self, addr: u64) -> Result<PyStr> {
        let l = self.layout();
        let hdr = self.view_spans(addr, &[span(l.ascii_length, 8), span(l.ascii_state, 4)])?;
        let length = hdr.i64(l.ascii_length)?;
        if length < 0 || length as usize > self.limits.max_len {
            return Err(if length < 0 { Error::corrupt(addr, "negative str length") } else { Error::Limit(format!("str of {length} characters")) });
        }
        let state = hdr.u32(l.ascii_state)?;
        let bits = |(pos, width): (u32, u32)| (state >> pos) & ((1 << width) - 1);
        let st = l.unicode_state;
        let (kind, compact, ascii) = (bits(st.kind), bits(st.compact), bits(st.ascii));
        let data = match (compact, ascii) {
            (1, 1) => addr + l.ascii_object_size as u64,
            (1, _) => addr + l.compact_object_size as u64,
            _ => self.ptr(addr + l.unicode_data as u64)?,
        };
        let n = length as usize;
        let width = match kind {
            1 => 1,
            2 => 2,
            4 => 4,
            _ => return Err(Error::corrupt(addr, format!("str kind {kind}"))),
        };
        let raw = if n == 0 { vec![] } else { self.read(data, n * width)? };
        if width == 1 {
            if ascii == 1 {
                return Ok(PyStr::Text(String::from_utf8_lossy(&raw).into_owned()));
            }
            return Ok(PyStr::Text(raw.iter().map(|&b| b as char).collect()));
        }
        let cps: Vec<u32> =
            if width == 2 { raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect() } else { units32(&raw).collect() };
        if cps.iter().all(|&c| char::from_u32(c).is_some()) {
            Ok(PyStr::Text(cps.iter().filter_map(|&c| char::from_u32(c)).collect()))
        } else {
            Ok(PyStr::CodePoints(cps))
        }
    }

    /// (key, value) addresses of a dict, in iteration order.
    pub fn dict_entries(&mut self, addr: u64) -> Result<Vec<(u64, u64)>> {
        let l = self.layout();
        let v = self.view(addr, &[l.dict_used, l.dict_keys, l.dict_values])?;
        let keys = v.ptr(l.dict_keys)?;
        let values = v.ptr(l.dict_values)?;
        let used = v.i64(l.dict_used)?;
        if used < 0 || used as usize > self.limits.max_len {
            return Err(Error::corrupt(addr, format!("dict of {used} items")));
        }
        let entries = self.dict_keys_entries(keys)?;
        if values == 0 {
            return Ok(entries.into_iter().filter(|&(k, v)| k != 0 && v != 0).collect());
        }
        let order = self.values_order(values, false)?;
        let mut out = Vec::with_capacity(order.len());
        for ix in order {
            if let Some(&(k, _)) = entries.get(ix) {
                let v = self.ptr(values + l.dictvalues_values as u64 + 8 * ix as u64)?;
                if k != 0 && v != 0 {
                    out.push((k, v));
                }
            }
        }
        Ok(out)
    }

    /// (key, value) of every entry slot of a keys object (value 0 for split tables).
    pub(super) fn dict_keys_entries(&mut self, keys: u64) -> Result<Vec<(u64, u64)>> {
        let l = self.layout();
        let hdr = self.view_spans(keys, &[span(l.dictkeys_log2_index_bytes, 1), span(l.dictkeys_kind, 1), span(l.dictkeys_nentries, 8)])?;
        let log2_index_bytes = hdr.u8(l.dictkeys_log2_index_bytes)? as u32;
        let kind = hdr.u8(l.dictkeys_kind)?;
        let nentries = hdr.i64(l.dictkeys_nentries)?;
        if log2_index_bytes > 40 || nentries < 0 || nentries as usize > self.limits.max_len {
            return Err(Error::corrupt(keys, "dict keys header"));
        }
        let n = nentries as usize;
        let entries_at = keys + l.dictkeys_indices as u64 + (1u64 << log2_index_bytes);
        // kind 0 (general) entries carry a hash; unicode and split ones do not.
        let (size, key_off) = if kind == 0 { (l.dict_key_entry_size, 1) } else { (l.dict_unicode_entry_size, 0) };
        if n == 0 {
            return Ok(vec![]);
        }
        let raw = self.read(entries_at, size * n)?;
        Ok(raw
            .chunks_exact(size)
            .map(|entry| {
                let mut w = words(entry).skip(key_off);
                (w.next().unwrap_or(0), w.next().unwrap_or(0))
            })
            .collect())
    }

    fn set_entries(&mut self, addr: u64) -> Result<Vec<u64>> {
        Ok(self.set_entries_from(addr, 0)?.into_iter().map(|(_, k)| k).collect())
    }

    /// (table position, key) of a set's entries from table position `from` on.
    fn set_entries_from(&mut self, addr: u64, from: usize) -> Result<Vec<(usize, u64)>> {
        let l = self.layout();
        let v = self.view(addr, &[l.set_mask, l.set_table])?;
        let mask = v.i64(l.set_mask)?;
        let table = v.ptr(l.set_table)?;
        if mask < 0 || mask as usize >= self.limits.max_len * 2 + 8 {
            return Err(Error::corrupt(addr, "set mask"));
        }
        let n = mask as usize + 1;
        let raw = self.read(table, l.set_entry_size * n)?;
        let dummy = self.py.symbols.set_dummy;
        Ok(raw
            .chunks_exact(l.set_entry_size)
            .enumerate()
            .skip(from)
            .map(|(i, entry)| (i, words(entry).next().unwrap_or(0)))
            .filter(|&(_, k)| k != 0 && k != dummy)
            .collect())
    }
}
