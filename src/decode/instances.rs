//! Instances of Python classes (and of C types we cannot see into): their `__dict__`
//! wherever this version keeps it, their `__slots__`, the builtin part of a subclass of
//! a builtin, struct sequences.

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::{ObjId, Object, Value};

use super::{Decoder, TypeShape, TPFLAGS_BASE_EXC_SUBCLASS, TPFLAGS_HEAPTYPE, TPFLAGS_IMMUTABLETYPE, TPFLAGS_MANAGED_DICT, TPFLAGS_TYPE_SUBCLASS};

/// Where an instance keeps its attributes.
pub(super) enum DictSource {
    None,
    Dict(u64),
    Values { values: u64, inline: bool },
}

impl<'a> Decoder<'a> {
    pub(super) fn decode_instance(&mut self, addr: u64, type_addr: u64, shape: &TypeShape) -> Result<Value> {
        if shape.flags & TPFLAGS_BASE_EXC_SUBCLASS != 0 {
            return self.decode_exception(addr);
        }
        if shape.flags & TPFLAGS_TYPE_SUBCLASS != 0 {
            return self.decode_type(addr);
        }
        if let Some(ctype) = shape.c_base {
            if self.limits.deep || ctype.shallow {
                return self.decode_registered(addr, type_addr, shape, ctype);
            }
        }
        let base = match shape.builtin {
            Some(
                b @ (BuiltinType::Int
                | BuiltinType::Float
                | BuiltinType::Str
                | BuiltinType::Bytes
                | BuiltinType::Tuple
                | BuiltinType::List
                | BuiltinType::Dict
                | BuiltinType::FrozenDict
                | BuiltinType::Set
                | BuiltinType::FrozenSet
                | BuiltinType::Complex
                | BuiltinType::ByteArray),
            ) => Some(Box::new(self.decode_builtin(addr, b)?)),
            _ => None,
        };
        // Static C types, and heap C types made from a spec (immutable: Python classes
        // never are), keep their state in C fields we cannot rebuild.
        let c_type = shape.flags & TPFLAGS_HEAPTYPE == 0 || shape.flags & TPFLAGS_IMMUTABLETYPE != 0;
        // A struct sequence (time.struct_time, os.stat_result) is a C type whose whole
        // state is its items, those past its visible length (st_mtime, tm_zone) included.
        let struct_fields = match base.as_deref() {
            Some(Value::Tuple(_)) if self.limits.deep => self.struct_sequence_fields(type_addr)?,
            _ => None,
        };
        if struct_fields.is_none() && ((shape.c_state && self.limits.deep) || (c_type && base.is_none())) {
            return Ok(Value::Opaque);
        }
        let dict = self.instance_dict(addr, type_addr, shape)?;
        let mut slots = if self.limits.deep { self.instance_slots(addr, type_addr)? } else { vec![] };
        let mut base = base;
        if let Some(n_fields) = struct_fields {
            if let Some(Value::Tuple(items)) = base.as_deref_mut() {
                let visible = items.len();
                if n_fields > visible && n_fields < 1024 {
                    let hidden = self.pointer_array(addr + self.layout().tuple_items as u64 + 8 * visible as u64, n_fields - visible)?;
                    items.extend(hidden);
                }
                slots.clear();
            }
        }
        Ok(Value::Instance { dict, slots, base })
    }

    /// `n_fields` of a struct sequence type (a C type over tuple that says so in its dict).
    fn struct_sequence_fields(&mut self, type_addr: u64) -> Result<Option<usize>> {
        let l = self.layout();
        let dict = self.ptr(type_addr + l.type_dict as u64)?;
        if dict == 0 || !self.is_exact(dict, BuiltinType::Dict)? {
            return Ok(None);
        }
        for (k, v) in self.dict_entries(dict)? {
            if self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == "n_fields" && self.is_exact(v, BuiltinType::Int)? {
                return Ok(Some(self.ptr(v + l.long_digits as u64)? as u32 as usize));
            }
        }
        Ok(None)
    }

    /// The instance `__dict__`, wherever this version keeps it (managed dict, inline or
    /// split values, or `tp_dictoffset`). Values-only instances become a synthetic dict node.
    pub(super) fn instance_dict(&mut self, addr: u64, type_addr: u64, shape: &TypeShape) -> Result<Option<ObjId>> {
        match self.instance_dict_source(addr, shape)? {
            DictSource::None => Ok(None),
            DictSource::Dict(d) => Ok(self.object(d)),
            DictSource::Values { values, inline } => self.split_values_dict(addr, type_addr, values, inline),
        }
    }

    /// Where an instance keeps its attributes, wherever this version puts them.
    pub(super) fn instance_dict_source(&mut self, addr: u64, shape: &TypeShape) -> Result<DictSource> {
        let l = self.layout();
        if shape.flags & TPFLAGS_MANAGED_DICT != 0 {
            let slot = self.ptr(addr.wrapping_add_signed(l.managed_dict_offset))?;
            if l.managed_dict_tags_values && slot & 1 == 1 {
                // A values pointer stored minus one.
                return Ok(DictSource::Values { values: slot + 1, inline: false });
            }
            if slot != 0 {
                return Ok(DictSource::Dict(slot));
            }
            if let Some(at) = l.managed_values_offset {
                let values = self.ptr(addr.wrapping_add_signed(at))?;
                if values != 0 {
                    return Ok(DictSource::Values { values, inline: false });
                }
            }
            if l.tpflags_inline_values.is_some_and(|flag| shape.flags & flag != 0) {
                return Ok(DictSource::Values { values: addr + shape.basicsize.max(16) as u64, inline: true });
            }
            return Ok(DictSource::None);
        }
        if shape.dictoffset > 0 {
            let d = self.ptr(addr + shape.dictoffset as u64)?;
            if d != 0 {
                return Ok(DictSource::Dict(d));
            }
        }
        Ok(DictSource::None)
    }

    /// The shared keys of a type's instances (0 if none).
    fn cached_keys(&mut self, type_addr: u64) -> Result<u64> {
        self.ptr(type_addr + self.layout().heaptype_cached_keys as u64)
    }

    /// (key, value) addresses of a values-only instance's attributes (its type's shared
    /// `keys`, not 0), in insertion order.
    fn values_items(&mut self, keys: u64, values: u64, inline: bool) -> Result<Vec<(u64, u64)>> {
        let l = self.layout();
        let key_addrs = self.dict_keys_entries(keys)?;
        let mut out = Vec::new();
        for ix in self.values_order(values, inline)? {
            let Some(&(k, _)) = key_addrs.get(ix) else { continue };
            let v = self.ptr(values + l.dictvalues_values as u64 + 8 * ix as u64)?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// (key, value) addresses of an instance's attributes, without creating nodes.
    pub fn instance_items(&mut self, addr: u64) -> Result<Vec<(u64, u64)>> {
        let type_addr = self.ptr(addr + self.layout().object_type as u64)?;
        let shape = self.type_shape(type_addr)?;
        match self.instance_dict_source(addr, &shape)? {
            DictSource::None => Ok(vec![]),
            DictSource::Dict(d) => self.dict_entries(d),
            DictSource::Values { values, inline } => {
                let keys = self.cached_keys(type_addr)?;
                if keys == 0 {
                    return Ok(vec![]);
                }
                Ok(self.values_items(keys, values, inline)?.into_iter().filter(|&(k, v)| k != 0 && v != 0).collect())
            }
        }
    }

    /// The address of an instance attribute stored in its `__dict__` (or values), if set.
    pub(super) fn instance_attribute(&mut self, addr: u64, type_addr: u64, shape: &TypeShape, name: &str) -> Result<Option<u64>> {
        let pairs: Vec<(u64, u64)> = match self.instance_dict_source(addr, shape)? {
            DictSource::None => return Ok(None),
            DictSource::Dict(d) => self.dict_entries(d)?,
            DictSource::Values { values, inline } => {
                let keys = self.cached_keys(type_addr)?;
                if keys == 0 {
                    return Ok(None);
                }
                self.values_items(keys, values, inline)?
            }
        };
        for (k, v) in pairs {
            if k != 0 && v != 0 && self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == name {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// A dict rebuilt from shared keys (the type's cached keys) and a values array.
    fn split_values_dict(&mut self, owner: u64, type_addr: u64, values: u64, inline: bool) -> Result<Option<ObjId>> {
        let keys = self.cached_keys(type_addr)?;
        if keys == 0 {
            return Ok(None);
        }
        let mut items = Vec::new();
        for (k, v) in self.values_items(keys, values, inline)? {
            if k != 0 && v != 0 {
                if let (Some(k), Some(v)) = (self.object(k), self.object(v)) {
                    items.push((k, v));
                }
            }
        }
        // A synthetic node: the dict does not exist as an object in the target, so it is
        // keyed by an address no real object can have (inside its owner's header).
        let pseudo = owner + 1;
        let dict_type = self.py.symbols.type_addr.get(&BuiltinType::Dict).copied().unwrap_or(0);
        let type_id = self.object(dict_type);
        let id = self.graph.objects.len() as ObjId;
        self.graph.objects.push(Object { addr: pseudo, type_id, value: Value::Dict(items) });
        self.graph.index.insert(pseudo, id);
        Ok(Some(id))
    }

    /// Insertion order of a split values array, as indices into the shared keys.
    pub(super) fn values_order(&mut self, values: u64, inline: bool) -> Result<Vec<usize>> {
        let l = self.layout();
        if let (Some(capacity_at), Some(size_at)) = (l.dictvalues_capacity, l.dictvalues_size) {
            // The header before the values: capacity, size, (3.13) whether inline values are valid.
            let hdr = self.view_range(values, 0, 4)?;
            let (capacity, size) = (hdr.u8(capacity_at)? as u64, hdr.u8(size_at)? as usize);
            if inline && l.dictvalues_valid.is_some() && hdr.u8(l.dictvalues_valid)? == 0 {
                return Ok(vec![]);
            }
            let order = self.read(values + l.dictvalues_values as u64 + 8 * capacity, size)?;
            return Ok(order.iter().map(|&b| b as usize).collect());
        }
        // Before 3.13: bytes before the values: [-1] prefix size, [-2] used, [-3-i] order.
        let prefix = self.read(values - 2, 2)?;
        let used = prefix[0] as usize;
        if used == 0 {
            return Ok(vec![]);
        }
        let raw = self.read(values - 2 - used as u64, used)?;
        Ok((0..used).map(|i| raw[used - 1 - i] as usize).collect())
    }

    pub(super) fn instance_slots(&mut self, addr: u64, type_addr: u64) -> Result<Vec<(String, Option<ObjId>)>> {
        let l = self.layout();
        let mro = self.ptr(type_addr + l.type_mro as u64)?;
        let mut out = Vec::new();
        if mro == 0 {
            return Ok(out);
        }
        let n = self.i64_at(mro + l.var_object_size as u64)?.clamp(0, 256) as usize;
        let member_type = self.py.symbols.type_addr.get(&BuiltinType::MemberDescr).copied().unwrap_or(0);
        for i in 0..n {
            let t = self.ptr(mro + l.tuple_items as u64 + 8 * i as u64)?;
            let flags = self.ptr(t + l.type_flags as u64)?;
            if flags & TPFLAGS_HEAPTYPE == 0 {
                continue;
            }
            let dict = self.ptr(t + l.type_dict as u64)?;
            for (k, v) in self.dict_entries(dict)? {
                if self.ptr(v + l.object_type as u64)? != member_type {
                    continue;
                }
                let def = self.ptr(v + l.member_descr_member as u64)?;
                let member = self.view_spans(def, &[super::span(l.memberdef_type, 4), super::span(l.memberdef_offset, 8)])?;
                let (ty, off) = (member.i32(l.memberdef_type)?, member.i64(l.memberdef_offset)?);
                // T_OBJECT (6) and T_OBJECT_EX (16) hold object pointers.
                if (ty == 6 || ty == 16) && off > 0 && off < 1 << 20 {
                    let name = self.read_str(k)?.as_text().into_owned();
                    let val = self.ptr(addr + off as u64)?;
                    let val = self.object(val);
                    out.push((name, val));
                }
            }
        }
        Ok(out)
    }
}
