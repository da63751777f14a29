//! What is carried and how: which modules' namespaces travel by value and which objects
//! are referred to by name (globals of installed modules), the entries of an imported
//! module a program may have patched, and the program's environment.

use std::collections::HashMap;

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::{ObjId, Value};

use super::{Decoder, TPFLAGS_HEAPTYPE, TPFLAGS_TYPE_SUBCLASS};

/// An environment as (name, value) byte strings, in `os.environ`'s order.
pub type Environ = Vec<(Vec<u8>, Vec<u8>)>;

impl<'a> Decoder<'a> {
    /// Objects that are globals of installed modules (stdlib, site-packages) the graph
    /// refers to become `Global` references rather than copies.
    pub(super) fn name_module_globals(&mut self) -> Result<()> {
        let mut modules = std::collections::BTreeSet::new();
        for o in &self.graph.objects {
            match &o.value {
                Value::Module { name, .. } => {
                    modules.insert(name.clone());
                }
                Value::Function { module_name, globals_module, .. } => {
                    modules.extend(module_name.iter().chain(globals_module.iter()).cloned());
                }
                Value::Type(t) => {
                    modules.insert(t.module.clone());
                }
                _ => {}
            }
        }
        for module in modules {
            if self.limits.module_dicts.contains(&module) || module == "builtins" {
                continue;
            }
            let Some(dict) = self.module_dict_address(&module)? else { continue };
            let entries = self.dict_entries(dict)?;
            let mut installed = true; // builtin and frozen modules have no __file__
            let mut named = Vec::new();
            for (k, v) in entries {
                if !self.is_exact(k, BuiltinType::Str)? {
                    continue;
                }
                let key = self.read_str(k)?.as_text().into_owned();
                if key == "__file__" && self.is_exact(v, BuiltinType::Str)? {
                    installed = self.read_str(v)?.as_text().contains("/lib/python3.");
                }
                if key.starts_with("__") && key.ends_with("__") {
                    continue;
                }
                // The standard streams may be rebound (redirect_stdout): carried as such.
                if module == "sys" && matches!(key.as_str(), "stdin" | "stdout" | "stderr") {
                    continue;
                }
                if let Some(id) = self.graph.id_of(v) {
                    if matches!(self.graph.get(id).value, Value::Instance { .. } | Value::Reduce { .. } | Value::Opaque) {
                        named.push((id, key, v));
                    }
                }
            }
            if installed {
                for (id, name, addr) in named {
                    // A random generator keeps its place in the sequence (a seeded program
                    // must go on drawing the same numbers); other singletons come fresh.
                    let reduced_state = match &self.graph.get(id).value {
                        Value::Reduce { state, .. } => *state,
                        _ => None,
                    };
                    let state = if reduced_state.is_some() && self.is_random(addr)? {
                        reduced_state
                    } else if module == "logging" && name == "root" {
                        // The logging setup (basicConfig's handlers, the level) lives on
                        // the root logger: its attributes go onto the new process's.
                        match &self.graph.get(id).value {
                            Value::Instance { dict, .. } => *dict,
                            _ => None,
                        }
                    } else {
                        None
                    };
                    self.graph.objects[id as usize].value = Value::Global { module: module.clone(), name, state };
                }
            }
        }
        Ok(())
    }

    /// Whether the object at `addr` is a `random.Random` (or subclass) instance.
    fn is_random(&mut self, addr: u64) -> Result<bool> {
        let type_addr = self.ptr(addr + self.layout().object_type as u64)?;
        Ok(self.type_shape(type_addr)?.c_base.is_some_and(|c| c.is(&super::random::RANDOM)))
    }

    /// Entries of an imported module that a program may have rebound: plain values, and
    /// functions or classes defined in `__main__` (monkey patches); with `containers`, also
    /// lists, dicts, sets and tuples; and random generators' state. Other values are what
    /// a fresh import gives back.
    pub(super) fn module_patches(&mut self, module: &str, dict: u64, containers: bool) -> Result<Vec<(String, ObjId)>> {
        let l = self.layout();
        let mut out = Vec::new();
        for (k, v) in self.dict_entries(dict)? {
            if !self.is_exact(k, BuiltinType::Str)? {
                continue;
            }
            let key = self.read_str(k)?.as_text().into_owned();
            if key.starts_with("__") && key.ends_with("__") {
                continue;
            }
            let t = self.ptr(v + l.object_type as u64)?;
            let carried = match self.py.symbols.types.get(&t) {
                Some(BuiltinType::Int | BuiltinType::Float | BuiltinType::Str | BuiltinType::Bytes | BuiltinType::Bool | BuiltinType::NoneType) => {
                    true
                }
                Some(
                    BuiltinType::List | BuiltinType::Dict | BuiltinType::Set | BuiltinType::Tuple | BuiltinType::FrozenSet | BuiltinType::ByteArray,
                ) => containers,
                Some(BuiltinType::Function) => {
                    let m = self.ptr(v + l.function_module as u64)?;
                    m != 0 && self.is_exact(m, BuiltinType::Str)? && self.read_str(m)?.as_text() == "__main__" && module != "__main__"
                }
                // A module's random generator (`random._inst`): its place in the sequence.
                None => self.is_random(v)?,
                _ => false,
            };
            if carried {
                if let Some(id) = self.object(v) {
                    out.push((key, id));
                }
            }
        }
        Ok(out)
    }

    /// The state a class of an installed package keeps in its dict: plain values,
    /// containers and instances (not its methods, descriptors or nested classes).
    pub(super) fn class_patches(&mut self, dict: u64) -> Result<Vec<(String, ObjId)>> {
        let l = self.layout();
        let mut out = Vec::new();
        if dict == 0 {
            return Ok(out);
        }
        for (k, v) in self.dict_entries(dict)? {
            if !self.is_exact(k, BuiltinType::Str)? {
                continue;
            }
            let key = self.read_str(k)?.as_text().into_owned();
            if key.starts_with("__") && key.ends_with("__") {
                continue;
            }
            let t = self.ptr(v + l.object_type as u64)?;
            let carried = match self.py.symbols.types.get(&t) {
                Some(
                    BuiltinType::Int
                    | BuiltinType::Float
                    | BuiltinType::Str
                    | BuiltinType::Bytes
                    | BuiltinType::Bool
                    | BuiltinType::NoneType
                    | BuiltinType::List
                    | BuiltinType::Dict
                    | BuiltinType::Set
                    | BuiltinType::Tuple
                    | BuiltinType::FrozenSet,
                ) => true,
                Some(_) => false,
                // An instance of a Python class (not a class itself: its type is no metaclass).
                None => {
                    let flags = self.ptr(t + l.type_flags as u64)?;
                    flags & TPFLAGS_HEAPTYPE != 0 && flags & TPFLAGS_TYPE_SUBCLASS == 0
                }
            };
            if carried {
                if let Some(id) = self.object(v) {
                    out.push((key, id));
                }
            }
        }
        Ok(out)
    }

    /// Whether module `name` was loaded from an installed package (site-packages), not
    /// the standard library or the program's own files.
    pub(super) fn in_site_packages(&mut self, name: &str) -> Result<bool> {
        if let Some(&known) = self.site_packages_modules.get(name) {
            return Ok(known);
        }
        let mut found = false;
        if let Some(dict) = self.module_dict_address(name)? {
            for (k, v) in self.dict_entries(dict)? {
                if self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == "__file__" && self.is_exact(v, BuiltinType::Str)? {
                    let file = self.read_str(v)?.as_text().into_owned();
                    found = file.contains("/site-packages/") || file.contains("/dist-packages/");
                }
            }
        }
        self.site_packages_modules.insert(name.to_string(), found);
        Ok(found)
    }

    /// Whether a frame's globals dict belongs to a module whose dict we expand.
    pub(super) fn globals_wanted(&mut self, globals: u64) -> Result<bool> {
        if globals == 0 {
            return Ok(false);
        }
        if self.graph.id_of(globals).is_some() {
            return Ok(true);
        }
        Ok(self.globals_name(globals)?.is_some_and(|name| self.limits.module_dicts.contains(&name)))
    }

    /// The program's environment as `os.environ` holds it (what it set or removed since
    /// it started included); None when `os` is not loaded or looks unusual.
    pub fn current_environ(&mut self) -> Result<Option<Environ>> {
        let l = self.layout();
        let Some(os_dict) = self.module_dict_address("os")? else { return Ok(None) };
        let mut environ = None;
        for (k, v) in self.dict_entries(os_dict)? {
            if self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == "environ" {
                environ = Some(v);
            }
        }
        let Some(environ) = environ else { return Ok(None) };
        let type_addr = self.ptr(environ + l.object_type as u64)?;
        let shape = self.type_shape(type_addr)?;
        let Some(data) = self.instance_attribute(environ, type_addr, &shape, "_data")? else { return Ok(None) };
        if !self.is_exact(data, BuiltinType::Dict)? {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (k, v) in self.dict_entries(data)? {
            if !(self.is_exact(k, BuiltinType::Bytes)? && self.is_exact(v, BuiltinType::Bytes)?) {
                return Ok(None);
            }
            let (kn, vn) = (self.len_of(k)?, self.len_of(v)?);
            out.push((self.read(k + l.bytes_data as u64, kn)?, self.read(v + l.bytes_data as u64, vn)?));
        }
        Ok(Some(out))
    }

    /// The namespace dict of the module `sys.modules[name]`.
    pub fn module_dict_address(&mut self, name: &str) -> Result<Option<u64>> {
        if self.module_dicts_by_name.is_none() {
            let l = self.layout();
            let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
            let modules = self.ptr(interp + l.interp_modules as u64)?;
            let mut by_name = HashMap::new();
            for (k, module) in self.dict_entries(modules)? {
                if self.is_exact(k, BuiltinType::Str)? && self.is_exact(module, BuiltinType::Module)? {
                    let key = self.read_str(k)?.as_text().into_owned();
                    by_name.insert(key, self.ptr(module + l.module_dict as u64)?);
                }
            }
            self.module_dicts_by_name = Some(by_name);
        }
        Ok(self.module_dicts_by_name.as_ref().and_then(|m| m.get(name).copied()))
    }

    /// `__name__` in a globals dict (cached: every function of a module shares it).
    pub(super) fn globals_name(&mut self, globals: u64) -> Result<Option<String>> {
        if globals == 0 {
            return Ok(None);
        }
        if let Some(name) = self.globals_names.get(&globals) {
            return Ok(name.clone());
        }
        let mut found = None;
        for (k, v) in self.dict_entries(globals)? {
            if self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == "__name__" && self.is_exact(v, BuiltinType::Str)? {
                found = Some(self.read_str(v)?.as_text().into_owned());
                break;
            }
        }
        self.globals_names.insert(globals, found.clone());
        Ok(found)
    }
}
