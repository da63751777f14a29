//! The object graph read out of the target's memory.
//!
//! Every object reached is one node, keyed by its address, so shared and cyclic
//! structures stay shared and cyclic. Decoding is iterative (a work queue, no recursion)
//! and bounded by [`Limits`], so a corrupt or racing heap can neither hang nor crash it.
//!
//! This module is the engine (the queue, reads, synthetic nodes, type shapes); the
//! children decode one family each: `builtins`, `instances` (Python class instances and
//! their dicts), `types` (classes and modules), `functions`, `frames` (code, frames,
//! threads), `io`, `policy` (what is carried by value and what by name), and the C types
//! of the standard library, one [`registry::CType`] entry each, in their family files.

mod builtins;
mod collections;
mod datetime;
mod decimal;
mod frames;
mod functions;
mod functools;
mod instances;
mod io;
mod itertools;
mod operator;
mod policy;
mod random;
mod re;
mod registry;
mod threading;
mod types;
mod view;
mod weakrefs;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

// Address-keyed maps are hit several times per object decoded: a fast hash matters more
// than DoS resistance on our own reads.
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::layouts::Layout;
use crate::process::{BuiltinType, PythonProcess};
use crate::snapshot::reducers::{self, Reducer};
use crate::snapshot::{ObjId, Object, ObjectGraph, Value};
use ptrace_tools::memory::MemoryReader;

pub use crate::snapshot::ThreadInfo;
pub use policy::Environ;
pub use registry::CType;
pub use view::{span, At, Span, View};

pub use crate::layouts::tpflags::*;

/// Bounds on what one read may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_objects: usize,
    pub max_len: usize,
    pub max_bytes: usize,
    /// Decode module dicts of these modules (e.g. `__main__`); others are kept by name.
    pub module_dicts: Vec<String>,
    /// Decode instance state (`__dict__`, slots) and class dicts of classes from expanded modules.
    pub deep: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_objects: 2_000_000, max_len: 50_000_000, max_bytes: 1 << 31, module_dicts: vec![], deep: false }
    }
}

/// Reads objects, frames and code out of one process through one memory view.
pub struct Decoder<'a> {
    pub py: &'a PythonProcess,
    pub mem: &'a dyn MemoryReader,
    pub limits: Limits,
    pub graph: ObjectGraph,
    queue: VecDeque<(ObjId, u64)>,
    bytes_read: usize,
    type_cache: FxHashMap<u64, TypeShape>,
    /// `sys.modules` as name -> module dict address, read once when needed.
    module_dicts_by_name: Option<HashMap<String, u64>>,
    /// Module name -> whether it was loaded from site-packages (`in_site_packages`).
    site_packages_modules: HashMap<String, bool>,
    /// Globals dict address -> its module's `__name__`.
    globals_names: FxHashMap<u64, Option<String>>,
    /// Objects to decode as the reduce tuple the shim made for them (address of the
    /// object -> address of its `(callable, args, state, listitems, dictitems)`).
    pub substitutions: FxHashMap<u64, u64>,
    /// The standard streams (`sys.stdout` ...) by address: carried as "the new process's own".
    pub stdio: FxHashMap<u64, String>,
    /// The process's open descriptors, read while it was stopped: when set, open files
    /// are decoded from memory (attach); otherwise the shim reduces them in-process.
    pub open_files: Option<std::collections::HashMap<i32, ptrace_tools::OpenFile>>,
    /// Frames found directly inside a 3.13 init-cleanup shim frame (see `frame_chain`).
    pub init_cleanup_inner: std::collections::HashSet<u64>,
    /// Address of 3.13's init-cleanup shim code, once seen.
    pub init_cleanup_code: Option<u64>,
    /// RLocks held by threads other than the main one: (owner's ident, lock, count).
    pub rlock_owners: RlockOwners,
}

/// RLocks held by threads other than the main one: (owner's ident, lock, count).
pub type RlockOwners = Vec<(u64, ObjId, u32)>;

/// What decoding needs to know about a type, read once per type.
#[derive(Debug, Clone, Copy)]
struct TypeShape {
    builtin: Option<BuiltinType>,
    /// A static type known by its name rather than an exported symbol.
    by_name: Option<BuiltinType>,
    /// Instances keep state in C fields of a non-builtin C base: only their own
    /// `__reduce_ex__` can carry them.
    c_state: bool,
    /// A C type of the standard library whose fields pyteleport reads (the type itself
    /// or the nearest such base of a Python class).
    c_base: Option<&'static CType>,
    flags: u64,
    basicsize: i64,
    dictoffset: i64,
}

/// Every C type read field by field.
static REGISTRY: &[&CType] = &[
    &collections::DEQUE,
    &collections::DEFAULTDICT,
    &collections::ORDERED_DICT,
    &collections::TUPLEGETTER,
    &random::RANDOM,
    &itertools::COUNT,
    &itertools::CHAIN,
    &itertools::ISLICE,
    &itertools::REPEAT,
    &itertools::CYCLE,
    &itertools::ACCUMULATE,
    &functools::PARTIAL,
    &functools::LRU_CACHE,
    &operator::ITEMGETTER,
    &operator::ATTRGETTER,
    &datetime::DATE,
    &datetime::DATETIME,
    &datetime::TIME,
    &datetime::TIMEDELTA,
    &datetime::TIMEZONE,
    &decimal::DECIMAL,
    &re::PATTERN,
    &io::TEXT_FILE,
    &io::BUFFERED_FILE,
    &io::RAW_FILE,
    &io::STRING_IO,
    &io::BYTES_IO,
    &types::SIMPLE_NAMESPACE,
    &threading::LOCK,
    &threading::RLOCK,
    &threading::LOCAL,
    &threading::THREAD_HANDLE,
    &weakrefs::WEAKREF,
    &weakrefs::PROXY,
];

/// The registered C type named `name`, if any.
pub fn c_type_named(name: &str) -> Option<&'static CType> {
    REGISTRY.iter().copied().find(|c| c.names.contains(&name))
}

/// An int node's value.
fn int_value(value: i64) -> Value {
    let mut digits = Vec::new();
    let mut rest = value.unsigned_abs();
    while rest != 0 {
        digits.push((rest & ((1 << 30) - 1)) as u32);
        rest >>= 30;
    }
    Value::Int { negative: value < 0, digits }
}

impl<'a> Decoder<'a> {
    pub fn new(py: &'a PythonProcess, mem: &'a dyn MemoryReader, limits: Limits) -> Self {
        Decoder {
            py,
            mem,
            limits,
            graph: ObjectGraph::default(),
            queue: VecDeque::new(),
            bytes_read: 0,
            type_cache: FxHashMap::default(),
            globals_names: FxHashMap::default(),
            module_dicts_by_name: None,
            site_packages_modules: HashMap::new(),
            substitutions: FxHashMap::default(),
            stdio: FxHashMap::default(),
            open_files: None,
            init_cleanup_inner: Default::default(),
            init_cleanup_code: None,
            rlock_owners: Vec::new(),
        }
    }

    /// The process being read.
    pub fn process(&self) -> &'a PythonProcess {
        self.py
    }

    fn layout(&self) -> &'static Layout {
        self.py.layout
    }

    pub fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        self.bytes_read += len;
        if self.bytes_read > self.limits.max_bytes {
            return Err(Error::Limit(format!("more than {} bytes read", self.limits.max_bytes)));
        }
        if addr == 0 {
            return Err(Error::corrupt(0, "null pointer dereference"));
        }
        Ok(self.mem.read_vec(addr, len)?)
    }
    pub fn ptr(&mut self, addr: u64) -> Result<u64> {
        Ok(self.mem.read_u64(addr)?)
    }
    fn i64_at(&mut self, addr: u64) -> Result<i64> {
        Ok(self.mem.read_u64(addr)? as i64)
    }
    /// The pointer in `field` of the structure at `addr`.
    fn field_ptr(&mut self, addr: u64, field: impl At) -> Result<u64> {
        self.ptr(addr + view::offset(addr, field)? as u64)
    }

    /// The node for the object at `addr`, queued for decoding if new. `None` for NULL.
    pub fn object(&mut self, addr: u64) -> Option<ObjId> {
        if addr == 0 {
            return None;
        }
        if let Some(&id) = self.graph.index.get(&addr) {
            return Some(id);
        }
        let id = self.graph.objects.len() as ObjId;
        let value = if self.graph.objects.len() >= self.limits.max_objects {
            Value::Unread(format!("object limit of {} reached", self.limits.max_objects))
        } else {
            self.queue.push_back((id, addr));
            Value::Opaque
        };
        self.graph.objects.push(Object { addr, type_id: None, value });
        self.graph.index.insert(addr, id);
        Some(id)
    }

    /// The node of `None` (absent if the process has no such symbol).
    fn none_id(&mut self) -> Option<ObjId> {
        Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n))
    }

    /// Decode everything queued so far (and what it reaches).
    pub fn drain(&mut self) -> Result<()> {
        while let Some((id, addr)) = self.queue.pop_front() {
            match self.decode(id, addr) {
                Ok(()) => {}
                Err(e) if std::env::var_os("PYTELEPORT_DEBUG").is_some() => {
                    eprintln!(
                        "decode {addr:#x} (type id {:?}): {e}",
                        self.graph.objects[id as usize].type_id.map(|t| self.graph.objects[t as usize].addr)
                    );
                    return Err(e);
                }
                Err(Error::Limit(m)) => self.graph.objects[id as usize].value = Value::Unread(m),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<ObjectGraph> {
        Ok(self.finish_with_rlock_owners()?.0)
    }

    /// As [`Self::finish`], with the RLocks found held by threads other than the main one.
    pub fn finish_with_rlock_owners(mut self) -> Result<(ObjectGraph, RlockOwners)> {
        self.drain()?;
        if self.limits.deep {
            self.name_module_globals()?;
        }
        Ok((self.graph, self.rlock_owners))
    }

    /// A node the decoder makes up (an argument list, a C integer as an int): `pseudo` is an
    /// address inside the header of the object it belongs to, where no object can start.
    fn synthetic(&mut self, pseudo: u64, kind: BuiltinType, value: Value) -> ObjId {
        let type_addr = self.py.symbols.type_addr.get(&kind).copied().unwrap_or(0);
        let type_id = self.object(type_addr);
        let id = self.graph.objects.len() as ObjId;
        self.graph.objects.push(Object { addr: pseudo, type_id, value });
        self.graph.index.insert(pseudo, id);
        id
    }

    fn synthetic_int(&mut self, pseudo: u64, value: i64) -> ObjId {
        self.synthetic(pseudo, BuiltinType::Int, int_value(value))
    }

    fn synthetic_str(&mut self, pseudo: u64, text: impl Into<String>) -> ObjId {
        self.synthetic(pseudo, BuiltinType::Str, Value::Str(crate::snapshot::PyStr::Text(text.into())))
    }

    /// `type(obj)(*args)` then `state`, as pickle's reduce does; the argument tuple is a
    /// synthetic node at `pseudo`.
    fn reduce_by_type(&mut self, addr: u64, type_addr: u64, pseudo: u64, args: Vec<ObjId>, state: Option<ObjId>) -> Result<Value> {
        let args = self.synthetic(pseudo, BuiltinType::Tuple, Value::Tuple(args));
        let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
        Ok(Value::Reduce { callable, args, state, listitems: None, dictitems: None })
    }

    /// `pyteleport._reducers.<helper>(*args)` in the new process, then `state` as for any
    /// reduced object; the argument tuple and the callable are synthetic nodes at
    /// `pseudo` and `pseudo + 1`.
    fn call_reducer(&mut self, pseudo: u64, helper: Reducer, args: Vec<ObjId>, state: Option<ObjId>) -> Value {
        debug_assert!(helper.accepts(args.len()), "{helper:?} called with {} arguments", args.len());
        let args = self.synthetic(pseudo, BuiltinType::Tuple, Value::Tuple(args));
        let callable = self.synthetic(pseudo + 1, BuiltinType::Function, reducer_global(helper));
        Value::Reduce { callable, args, state, listitems: None, dictitems: None }
    }

    /// Whether a type (its address and header) is implemented in C rather than by a
    /// `class` statement. Static and immutable types are C. A mutable heap type is C when
    /// its instances are larger than its base's by more than a `class` statement adds
    /// (`__slots__` members, a dict and a weakref pointer): C fields we cannot see.
    fn is_c_type(&mut self, type_addr: u64, hdr: &View) -> Result<bool> {
        let l = self.layout();
        let flags = hdr.u64(l.type_flags)?;
        if flags & TPFLAGS_HEAPTYPE == 0 || flags & TPFLAGS_IMMUTABLETYPE != 0 {
            return Ok(true);
        }
        let base = hdr.ptr(l.type_base)?;
        if base == 0 {
            return Ok(false);
        }
        let base_hdr = self.view(base, &[l.type_basicsize, l.type_itemsize])?;
        let slots = self.ptr(type_addr + l.heaptype_slots as u64)?;
        let nslots = if slots != 0 && self.is_exact(slots, BuiltinType::Tuple)? { self.len_of(slots)? as i64 } else { 0 };
        let extra = hdr.i64(l.type_basicsize)? - base_hdr.i64(l.type_basicsize)? - 8 * nslots;
        let same_items = hdr.i64(l.type_itemsize)? == base_hdr.i64(l.type_itemsize)?;
        Ok(!(same_items && (0..=16).contains(&extra)))
    }

    /// The fields of a type object that [`Self::type_shape`] reads.
    fn type_header(&mut self, type_addr: u64) -> Result<View> {
        let l = self.layout();
        self.view(type_addr, &[l.type_name, l.type_basicsize, l.type_itemsize, l.type_flags, l.type_base, l.type_dictoffset])
    }

    fn type_shape(&mut self, type_addr: u64) -> Result<TypeShape> {
        if let Some(s) = self.type_cache.get(&type_addr) {
            return Ok(*s);
        }
        let l = self.layout();
        let hdr = self.type_header(type_addr)?;
        let flags = hdr.u64(l.type_flags)?;
        let mut builtin = self.py.symbols.types.get(&type_addr).copied();
        let mut c_state = false;
        let mut c_base = None;
        if builtin.is_none() {
            // A subclass of a builtin: decode the builtin part by walking tp_base. A C type
            // on the way (_random.Random) keeps state we cannot see, unless it is one whose
            // fields we read.
            c_base = self.registered_c_type(&hdr)?;
            c_state = c_base.is_none() && self.is_c_type(type_addr, &hdr)?;
            let mut base = hdr.ptr(l.type_base)?;
            let mut hops = 0;
            while base != 0 && hops < 64 {
                if let Some(b) = self.py.symbols.types.get(&base) {
                    if *b != BuiltinType::Object {
                        builtin = Some(*b);
                    }
                    break;
                }
                let base_hdr = self.type_header(base)?;
                match self.registered_c_type(&base_hdr)? {
                    Some(known) if c_base.is_none() => c_base = Some(known),
                    _ => c_state |= self.is_c_type(base, &base_hdr)?,
                }
                base = base_hdr.ptr(l.type_base)?;
                hops += 1;
            }
        }
        let mut by_name = None;
        if builtin.is_none() && flags & TPFLAGS_HEAPTYPE == 0 {
            let name = self.c_string(hdr.ptr(l.type_name)?, 64)?;
            by_name = crate::process::TYPES_BY_NAME.iter().find(|(n, _)| *n == name).map(|&(_, b)| b);
        }
        let shape =
            TypeShape { builtin, by_name, c_state, c_base, flags, basicsize: hdr.i64(l.type_basicsize)?, dictoffset: hdr.i64(l.type_dictoffset)? };
        self.type_cache.insert(type_addr, shape);
        Ok(shape)
    }

    fn decode(&mut self, id: ObjId, addr: u64) -> Result<()> {
        let l = self.layout();
        let type_addr = self.ptr(addr + l.object_type as u64)?;
        if type_addr == 0 {
            return Err(Error::corrupt(addr, "object with a null type"));
        }
        let type_id = self.object(type_addr);
        self.graph.objects[id as usize].type_id = type_id;
        let shape = self.type_shape(type_addr)?;
        if let Some(name) = self.stdio.get(&addr) {
            self.graph.objects[id as usize].value = Value::Stdio(name.clone());
            return Ok(());
        }
        if let Some(&reduced) = self.substitutions.get(&addr) {
            let value = self.decode_reduce(addr, reduced)?;
            self.graph.objects[id as usize].value = value;
            return Ok(());
        }
        let exact = self.py.symbols.types.get(&type_addr).copied().or(shape.by_name);
        let value = match exact {
            Some(kind) => self.decode_builtin(addr, kind)?,
            None => self.decode_instance(addr, type_addr, &shape)?,
        };
        self.graph.objects[id as usize].value = value;
        Ok(())
    }

    /// An object the shim reduced (pickle protocol): the tuple's parts become references.
    fn decode_reduce(&mut self, addr: u64, tuple: u64) -> Result<Value> {
        let l = self.layout();
        if !self.is_exact(tuple, BuiltinType::Tuple)? || self.len_of(tuple)? != 5 {
            return Err(Error::corrupt(addr, "reduce result is not a 5-tuple"));
        }
        let parts = self.words_at(tuple + l.tuple_items as u64, 5)?;
        let part = |me: &mut Self, i: usize| me.object(parts[i]).filter(|&id| me.graph.get(id).addr != me.py.symbols.none);
        // A callable named as "pyteleport._reducers.<helper>": only those helpers.
        let named = if parts[0] != 0 && self.is_exact(parts[0], BuiltinType::Str)? {
            let dotted = self.read_str(parts[0])?.as_text().into_owned();
            let helper =
                Reducer::from_dotted_name(&dotted).ok_or_else(|| Error::corrupt(addr, format!("reduce names an unknown helper {dotted:?}")))?;
            Some(self.synthetic(tuple + 1, BuiltinType::Function, reducer_global(helper)))
        } else {
            None
        };
        let (Some(callable), Some(args)) = (named.or_else(|| part(self, 0)), part(self, 1)) else {
            return Err(Error::corrupt(addr, "reduce result without callable and arguments"));
        };
        let args = self.args_read_from_memory(addr, parts[1], args)?;
        Ok(Value::Reduce { callable, args, state: part(self, 2), listitems: part(self, 3), dictitems: part(self, 4) })
    }

    /// What the reduce made in Python cannot see, read from the object's own memory: a
    /// sqlite3 connection's `detect_types` and `check_same_thread` (honoured when the main
    /// thread opened it: the new process opens it there), appended to `args`; a sqlite3
    /// cursor in the middle of a query's rows cannot be carried now.
    fn args_read_from_memory(&mut self, addr: u64, args_addr: u64, args: ObjId) -> Result<ObjId> {
        let l = self.layout();
        match self.c_base_named(addr, &["sqlite3.Connection", "sqlite3.Cursor"])?.as_deref() {
            Some("sqlite3.Connection") => {
                let fields = self.read(addr, l.sqlite_connection_thread_ident + 8)?;
                let int_at = |at: usize| i32::from_le_bytes([fields[at], fields[at + 1], fields[at + 2], fields[at + 3]]);
                let (detect_types, check) = (int_at(l.sqlite_connection_detect_types), int_at(l.sqlite_connection_check_same_thread));
                let opener = u64::from_le_bytes(fields[l.sqlite_connection_thread_ident..][..8].try_into().expect("8 bytes"));
                let main_ident = match self.main_thread_state()? {
                    Some(ts) => self.ptr(ts + l.tstate_thread_id as u64)?,
                    None => 0,
                };
                if !self.is_exact(args_addr, BuiltinType::Tuple)? {
                    return Err(Error::corrupt(addr, "reduce arguments are not a tuple"));
                }
                let n = self.len_of(args_addr)?;
                let mut items = self.pointer_array(args_addr + l.tuple_items as u64, n)?;
                items.push(self.synthetic_int(addr + 2, detect_types as i64));
                items.push(self.synthetic_int(addr + 3, (check != 0 && opener == main_ident) as i64));
                Ok(self.synthetic(addr + 4, BuiltinType::Tuple, Value::Tuple(items)))
            }
            Some(_) if self.ptr(addr + l.sqlite_cursor_statement as u64)? != 0 => {
                Err(crate::error::CaptureError::NotNow { what: "a sqlite3 cursor is in the middle of a query's rows".into() }.into())
            }
            _ => Ok(args),
        }
    }

    /// The first of `names` that is the `tp_name` of the object's type or of a base.
    fn c_base_named(&mut self, addr: u64, names: &[&str]) -> Result<Option<String>> {
        let l = self.layout();
        let mut t = self.ptr(addr + l.object_type as u64)?;
        for _ in 0..32 {
            if t == 0 {
                break;
            }
            let name_at = self.ptr(t + l.type_name as u64)?;
            let name = self.c_string(name_at, 64)?;
            if let Some(found) = names.iter().find(|n| **n == name) {
                return Ok(Some(found.to_string()));
            }
            t = self.ptr(t + l.type_base as u64)?;
        }
        Ok(None)
    }

    pub(crate) fn is_exact(&mut self, addr: u64, kind: BuiltinType) -> Result<bool> {
        let t = self.ptr(addr + self.layout().object_type as u64)?;
        Ok(self.py.symbols.types.get(&t) == Some(&kind))
    }

    /// The dotted `tp_name` of an object's type.
    fn type_name_of(&mut self, obj: u64) -> Result<String> {
        let l = self.layout();
        let t = self.ptr(obj + l.object_type as u64)?;
        let name = self.ptr(t + l.type_name as u64)?;
        self.c_string(name, 64)
    }

    fn len_of(&mut self, addr: u64) -> Result<usize> {
        let n = self.i64_at(addr + self.layout().var_object_size as u64)?;
        if n < 0 || n as usize > self.limits.max_len {
            return Err(if n < 0 { Error::corrupt(addr, format!("negative size {n}")) } else { Error::Limit(format!("object of {n} items")) });
        }
        Ok(n as usize)
    }

    fn pointer_array(&mut self, at: u64, n: usize) -> Result<Vec<ObjId>> {
        let raw = self.read(at, 8 * n)?;
        Ok(view::words(&raw).filter_map(|p| self.object(p)).collect())
    }

    pub fn c_string(&mut self, addr: u64, max: usize) -> Result<String> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Read in small chunks: a C string may end right before an unmapped page.
            let chunk = self.mem.read_vec(at, 32).or_else(|_| self.mem.read_vec(at, 1))?;
            if let Some(p) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..p]);
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&chunk);
            at += chunk.len() as u64;
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The value of a `pyteleport._reducers` function, referred to by name.
fn reducer_global(helper: Reducer) -> Value {
    Value::Global { module: reducers::MODULE.into(), name: helper.name().into(), state: None }
}
