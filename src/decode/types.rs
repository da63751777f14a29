//! Classes, modules, and `types.SimpleNamespace`.

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::{ObjId, TypeInfo, Value};

use super::registry::{CType, Instance};
use super::view::span;
use super::{Decoder, TPFLAGS_HEAPTYPE};

/// `types.SimpleNamespace`: its attributes are its whole state, `cls()` then its dict.
pub static SIMPLE_NAMESPACE: CType = CType {
    names: &["types.SimpleNamespace"],
    fields: |l| vec![span(l.object_type, 8)],
    decode: |d, i: &Instance| d.reduce_by_type(i.addr, i.type_addr, i.addr + 2, vec![], i.dict),
    shallow: false,
};

impl<'a> Decoder<'a> {
    pub(super) fn decode_type(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let v = self.view(addr, &[l.type_name, l.type_flags, l.type_base, l.type_dict, l.type_mro])?;
        let flags = v.u64(l.type_flags)?;
        let tp_name = self.c_string(v.ptr(l.type_name)?, 512)?;
        let builtin = self.py.symbols.types.get(&addr).map(|b| format!("{b:?}"));
        let (name, qualname, module, dict_names) = if flags & TPFLAGS_HEAPTYPE != 0 {
            let ht = self.view(addr, &[l.heaptype_name, l.heaptype_qualname])?;
            let name = self.read_str(ht.ptr(l.heaptype_name)?)?.as_text().into_owned();
            let qualname = self.read_str(ht.ptr(l.heaptype_qualname)?)?.as_text().into_owned();
            let dict = v.ptr(l.type_dict)?;
            let mut module = String::from("builtins");
            let mut names = Vec::new();
            if dict != 0 {
                for (k, v) in self.dict_entries(dict)? {
                    let key = self.read_str(k)?.as_text().into_owned();
                    if key == "__module__" && self.is_exact(v, BuiltinType::Str)? {
                        module = self.read_str(v)?.as_text().into_owned();
                    }
                    names.push(key);
                }
            }
            (name, qualname, module, names)
        } else {
            match tp_name.rsplit_once('.') {
                Some((m, q)) => (q.to_string(), q.to_string(), m.to_string(), vec![]),
                None => (tp_name.clone(), tp_name.clone(), "builtins".to_string(), vec![]),
            }
        };
        let mro_addr = v.ptr(l.type_mro)?;
        let mro = if mro_addr != 0 {
            let n = self.len_of(mro_addr)?.min(256);
            self.pointer_array(mro_addr + l.tuple_items as u64, n)?
        } else {
            vec![]
        };
        // __bases__ (tp_bases); static types may not have it filled: fall back to tp_base.
        let bases_addr = self.ptr(addr + l.type_bases as u64)?;
        let bases: Vec<ObjId> = if bases_addr != 0 && self.is_exact(bases_addr, BuiltinType::Tuple)? {
            let n = self.len_of(bases_addr)?.min(256);
            self.pointer_array(bases_addr + l.tuple_items as u64, n)?
        } else {
            self.object(v.ptr(l.type_base)?).into_iter().collect()
        };
        let dict = if flags & TPFLAGS_HEAPTYPE != 0 && self.limits.deep && self.limits.module_dicts.contains(&module) {
            self.object(v.ptr(l.type_dict)?)
        } else {
            None
        };
        let meta_addr = self.ptr(addr + l.object_type as u64)?;
        let metaclass = self.object(meta_addr);
        let plain_class = meta_addr == self.py.symbols.type_addr.get(&BuiltinType::Type).copied().unwrap_or(0);
        let patches = if dict.is_none() && plain_class && flags & TPFLAGS_HEAPTYPE != 0 && self.limits.deep && self.in_site_packages(&module)? {
            self.class_patches(v.ptr(l.type_dict)?)?
        } else {
            vec![]
        };
        Ok(Value::Type(TypeInfo { name, qualname, module, flags, builtin, mro, bases, dict_names, dict, metaclass, patches }))
    }

    pub(super) fn decode_module(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let dict = self.ptr(addr + l.module_dict as u64)?;
        let mut name = String::new();
        let mut file = None;
        let mut spec = 0;
        if dict != 0 {
            for (k, v) in self.dict_entries(dict)? {
                let key = self.read_str(k)?.as_text().into_owned();
                match key.as_str() {
                    "__name__" if self.is_exact(v, BuiltinType::Str)? => name = self.read_str(v)?.as_text().into_owned(),
                    "__file__" if self.is_exact(v, BuiltinType::Str)? => file = Some(self.read_str(v)?.as_text().into_owned()),
                    "__spec__" => spec = v,
                    _ => {}
                }
            }
        }
        // repr needs the spec's origin and whether it is a file location; read them
        // without creating nodes, so a teleport does not carry the spec.
        let mut origin = None;
        let mut has_location = false;
        if spec != 0 && spec != self.py.symbols.none {
            for (k, v) in self.instance_items(spec)? {
                if !self.is_exact(k, BuiltinType::Str)? {
                    continue;
                }
                match self.read_str(k)?.as_text().as_ref() {
                    "origin" if self.is_exact(v, BuiltinType::Str)? => origin = Some(self.read_str(v)?.as_text().into_owned()),
                    "_set_fileattr" => has_location = v == self.py.symbols.true_,
                    _ => {}
                }
            }
        }
        let expanded = self.limits.module_dicts.contains(&name);
        // The program's own modules (not the standard library's or installed packages')
        // also carry the containers they hold: state the program accumulated there.
        let own_module = file.as_deref().is_some_and(|f| !f.contains("/lib/python3."));
        let patches = if self.limits.deep && !expanded && dict != 0 && name != "sys" && name != "builtins" {
            self.module_patches(&name, dict, own_module)?
        } else {
            vec![]
        };
        let dict = if expanded { self.object(dict) } else { None };
        Ok(Value::Module { name, file, spec: spec != 0 && spec != self.py.symbols.none, origin, has_location, dict, patches })
    }
}
