//! The object graph read out of the target's memory.
//!
//! Every object reached is one node, keyed by its address, so shared and cyclic
//! structures stay shared and cyclic. Decoding is iterative (a work queue, no recursion)
//! and bounded by [`Limits`], so a corrupt or racing heap can neither hang nor crash it.

use std::collections::{HashMap, VecDeque};

// Address-keyed maps are hit several times per object decoded: a fast hash matters more
// than DoS resistance on our own reads.
use rustc_hash::FxHashMap;


use crate::error::{Error, Result};
use crate::snapshot::reducers::{self, Reducer};
pub use crate::snapshot::model::{CodeInfo, FrameInfo, ObjId, Object, ObjectGraph, PyStr, StackSource, TypeInfo, Value};
use crate::process::{BuiltinType, PythonProcess};
use crate::layouts::Layout;
use ptrace_tools::memory::MemoryReader;


pub const TPFLAGS_HEAPTYPE: u64 = 1 << 9;
pub const TPFLAGS_IMMUTABLETYPE: u64 = 1 << 8;

pub const TPFLAGS_LONG_SUBCLASS: u64 = 1 << 24;
pub const TPFLAGS_LIST_SUBCLASS: u64 = 1 << 25;
pub const TPFLAGS_TUPLE_SUBCLASS: u64 = 1 << 26;
pub const TPFLAGS_BYTES_SUBCLASS: u64 = 1 << 27;
pub const TPFLAGS_UNICODE_SUBCLASS: u64 = 1 << 28;
pub const TPFLAGS_DICT_SUBCLASS: u64 = 1 << 29;
pub const TPFLAGS_BASE_EXC_SUBCLASS: u64 = 1 << 30;
pub const TPFLAGS_TYPE_SUBCLASS: u64 = 1 << 31;
pub const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
pub const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;

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
}

enum DictSource {
    None,
    Dict(u64),
    Values { values: u64, inline: bool },
}

/// What decoding needs to know about a type, read once per type.
/// C types outside the core whose state is read field by field (see `decode_known_c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KnownCType {
    Deque,
    DefaultDict,
    OrderedDict,
    /// `_random.Random`, the C base of `random.Random`.
    Random,
    /// `itertools.count`.
    Count,
    /// `functools.partial`.
    Partial,
    /// `datetime` types (C fields: packed date and time bytes, tzinfo, fold).
    Date,
    DateTime,
    Time,
    TimeDelta,
    TimeZone,
    /// `decimal.Decimal` (libmpdec's coefficient words and exponent).
    Decimal,
    /// `re.Pattern`: compiled again from its source and flags.
    Pattern,
    /// A `functools.lru_cache` wrapper, with its cache's entries.
    LruCache,
    /// Open files: `open()`'s text wrapper, its buffered layer, the raw FileIO.
    TextFile,
    BufferedFile,
    RawFile,
    /// In-memory files.
    StringIO,
    BytesIO,
    /// `types.SimpleNamespace`: its attributes are its whole state.
    Namespace,
    /// `_thread.lock` and `_thread.RLock` (what `threading.Lock()`/`RLock()` make).
    Lock,
    RLock,
    /// `itertools` objects a loop may be consuming.
    Chain,
    Islice,
    Repeat,
    Cycle,
    Accumulate,
    /// `operator.itemgetter` and `attrgetter` (sort keys kept in a variable).
    ItemGetter,
    AttrGetter,
}

impl KnownCType {
    /// End of the last field read, or None when this version's table lacks one.
    fn last_field_end(self, l: &Layout) -> Option<usize> {
        let fields: &[(usize, usize)] = match self {
            KnownCType::Deque => &[(l.deque_leftblock, 8), (l.deque_leftindex, 8), (l.deque_maxlen, 8), (l.deque_block_rightlink, 0)],
            KnownCType::DefaultDict => &[(l.defaultdict_factory, 8)],
            KnownCType::OrderedDict => &[(l.odict_first, 8), (l.odictnode_next, 0)],
            KnownCType::Random => &[(l.random_index, 4), (l.random_state, 624 * 4)],
            KnownCType::Count => &[(l.count_cnt, 8), (l.count_long_cnt, 8), (l.count_long_step, 8)],
            KnownCType::Partial => &[(l.partial_fn, 8), (l.partial_args, 8), (l.partial_kw, 8), (l.partial_dict, 8)],
            KnownCType::Date => &[(l.date_data, 4)],
            KnownCType::DateTime => &[(l.datetime_hastzinfo, 1), (l.datetime_data, 10), (l.datetime_fold, 1), (l.datetime_tzinfo, 8)],
            KnownCType::Time => &[(l.time_hastzinfo, 1), (l.time_data, 6), (l.time_fold, 1), (l.time_tzinfo, 8)],
            KnownCType::TimeDelta => &[(l.delta_days, 4), (l.delta_seconds, 4), (l.delta_microseconds, 4)],
            KnownCType::TimeZone => &[(l.timezone_offset, 8), (l.timezone_name, 8)],
            KnownCType::Decimal => &[(l.decimal_flags, 1), (l.decimal_exp, 8), (l.decimal_len, 8), (l.decimal_data, 8)],
            KnownCType::Pattern => &[(l.pattern_pattern, 8), (l.pattern_flags, 4)],
            KnownCType::TextFile => &[(l.textio_buffer, 8), (l.textio_encoding, 8), (l.textio_errors, 8), (l.textio_readnl, 8), (l.textio_readtranslate, 1), (l.textio_pending_bytes, 8), (l.textio_decoded_chars, 8), (l.textio_decoded_chars_used, 8), (l.buffered_raw_pos, 0), (l.fileio_fd, 0)],
            KnownCType::BufferedFile => &[(l.buffered_raw, 8), (l.buffered_raw_pos, 8), (l.buffered_pos, 8), (l.buffered_read_end, 8), (l.buffered_write_pos, 8), (l.buffered_write_end, 8), (l.buffered_buffer, 8), (l.fileio_fd, 0)],
            KnownCType::RawFile => &[(l.fileio_fd, 4)],
            KnownCType::StringIO => &[(l.stringio_buf, 8), (l.stringio_pos, 8), (l.stringio_string_size, 8), (l.stringio_state, 4), (l.stringio_closed, 1), (l.stringio_readnl, 8), (l.stringio_dict, 8)],
            KnownCType::Namespace => &[(l.object_type, 8)],
            KnownCType::Lock => &[(l.lock_locked, 1)],
            KnownCType::Chain => &[(l.chain_source, 8), (l.chain_active, 8)],
            KnownCType::Islice => &[(l.islice_it, 8), (l.islice_next, 8), (l.islice_stop, 8), (l.islice_step, 8), (l.islice_cnt, 8)],
            KnownCType::Repeat => &[(l.repeat_element, 8), (l.repeat_cnt, 8)],
            KnownCType::Cycle => &[(l.cycle_it, 8), (l.cycle_saved, 8), (l.cycle_index, 8)],
            KnownCType::Accumulate => &[(l.accumulate_total, 8), (l.accumulate_it, 8), (l.accumulate_binop, 8), (l.accumulate_initial, 8)],
            KnownCType::ItemGetter => &[(l.itemgetter_nitems, 8), (l.itemgetter_item, 8)],
            KnownCType::AttrGetter => &[(l.attrgetter_attr, 8)],
            KnownCType::RLock => &[(l.rlock_owner, 8), (l.rlock_count, 8)],
            KnownCType::BytesIO => &[(l.bytesio_buf, 8), (l.bytesio_pos, 8), (l.bytesio_string_size, 8), (l.bytesio_dict, 8)],
            KnownCType::LruCache => &[(l.lru_root_next, 8), (l.lru_typed, 4), (l.lru_cache, 8), (l.lru_hits, 8), (l.lru_func, 8), (l.lru_maxsize, 8), (l.lru_misses, 8), (l.lru_kwd_mark, 8), (l.lru_link_next, 0), (l.lru_link_key, 0), (l.lru_link_result, 0)],
        };
        // Fields of other structures (size 0 here) only need to exist.
        fields.iter().try_fold(0, |end, &(off, size)| l.has(off).then(|| if size == 0 { end } else { end.max(off + size) }))
    }

    fn from_type_name(name: &str) -> Option<Self> {
        match name {
            "collections.deque" => Some(KnownCType::Deque),
            "collections.defaultdict" => Some(KnownCType::DefaultDict),
            "collections.OrderedDict" => Some(KnownCType::OrderedDict),
            "_random.Random" => Some(KnownCType::Random),
            "itertools.count" => Some(KnownCType::Count),
            "functools.partial" => Some(KnownCType::Partial),
            "datetime.date" => Some(KnownCType::Date),
            "datetime.datetime" => Some(KnownCType::DateTime),
            "datetime.time" => Some(KnownCType::Time),
            "datetime.timedelta" => Some(KnownCType::TimeDelta),
            "datetime.timezone" => Some(KnownCType::TimeZone),
            "decimal.Decimal" => Some(KnownCType::Decimal),
            "re.Pattern" => Some(KnownCType::Pattern),
            "functools._lru_cache_wrapper" => Some(KnownCType::LruCache),
            "_io.TextIOWrapper" => Some(KnownCType::TextFile),
            "_io.BufferedReader" | "_io.BufferedWriter" | "_io.BufferedRandom" => Some(KnownCType::BufferedFile),
            "_io.FileIO" => Some(KnownCType::RawFile),
            "_io.StringIO" => Some(KnownCType::StringIO),
            "_io.BytesIO" => Some(KnownCType::BytesIO),
            "types.SimpleNamespace" => Some(KnownCType::Namespace),
            "_thread.lock" => Some(KnownCType::Lock),
            "_thread.RLock" => Some(KnownCType::RLock),
            "itertools.chain" => Some(KnownCType::Chain),
            "itertools.islice" => Some(KnownCType::Islice),
            "itertools.repeat" => Some(KnownCType::Repeat),
            "itertools.cycle" => Some(KnownCType::Cycle),
            "itertools.accumulate" => Some(KnownCType::Accumulate),
            "operator.itemgetter" => Some(KnownCType::ItemGetter),
            "operator.attrgetter" => Some(KnownCType::AttrGetter),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct TypeShape {
    builtin: Option<BuiltinType>,
    /// A static type known by its name rather than an exported symbol.
    by_name: Option<BuiltinType>,
    /// Instances keep state in C fields of a non-builtin C base: only their own
    /// `__reduce_ex__` can carry them.
    c_state: bool,
    /// A C type of the standard library whose fields pyteleport reads (the type itself
    /// or the nearest such base of a Python class).
    c_base: Option<KnownCType>,
    flags: u64,
    basicsize: i64,
    dictoffset: i64,
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

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))).unwrap_or(0)
}
fn le_i64(b: &[u8], off: usize) -> i64 {
    le_u64(b, off) as i64
}
fn le_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4]))).unwrap_or(0)
}
fn le_i32(b: &[u8], off: usize) -> i32 {
    le_u32(b, off) as i32
}

impl<'a> Decoder<'a> {
    pub fn new(py: &'a PythonProcess, mem: &'a dyn MemoryReader, limits: Limits) -> Self {
        Decoder { py, mem, limits, graph: ObjectGraph::default(), queue: VecDeque::new(), bytes_read: 0, type_cache: FxHashMap::default(), globals_names: FxHashMap::default(), module_dicts_by_name: None, substitutions: FxHashMap::default(), stdio: FxHashMap::default(), open_files: None, init_cleanup_inner: Default::default(), init_cleanup_code: None }
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

    /// Decode everything queued so far (and what it reaches).
    pub fn drain(&mut self) -> Result<()> {
        while let Some((id, addr)) = self.queue.pop_front() {
            match self.decode(id, addr) {
                Ok(()) => {}
                Err(e) if std::env::var_os("PYTELEPORT_DEBUG").is_some() => {
                    eprintln!("decode {addr:#x} (type id {:?}): {e}", self.graph.objects[id as usize].type_id.map(|t| self.graph.objects[t as usize].addr));
                    return Err(e);
                }
                Err(Error::Limit(m)) => self.graph.objects[id as usize].value = Value::Unread(m),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<ObjectGraph> {
        self.drain()?;
        if self.limits.deep {
            self.name_module_globals()?;
        }
        Ok(self.graph)
    }

    /// Objects that are globals of installed modules (stdlib, site-packages) the graph
    /// refers to become `Global` references rather than copies.
    fn name_module_globals(&mut self) -> Result<()> {
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

    /// Whether a type (its address and header bytes) is implemented in C rather than by
    /// a `class` statement. Static and immutable types are C. A mutable heap type is C when
    /// its instances are larger than its base's by more than a `class` statement adds
    /// (`__slots__` members, a dict and a weakref pointer): C fields we cannot see.
    fn is_c_type(&mut self, type_addr: u64, hdr: &[u8]) -> Result<bool> {
        let l = self.layout();
        let flags = le_u64(hdr, l.type_flags);
        if flags & TPFLAGS_HEAPTYPE == 0 || flags & TPFLAGS_IMMUTABLETYPE != 0 {
            return Ok(true);
        }
        let base = le_u64(hdr, l.type_base);
        if base == 0 {
            return Ok(false);
        }
        let base_hdr = self.read(base, l.type_mro + 8)?;
        let slots = self.ptr(type_addr + l.heaptype_slots as u64)?;
        let nslots = if slots != 0 && self.is_exact(slots, BuiltinType::Tuple)? { self.len_of(slots)? as i64 } else { 0 };
        let extra = le_i64(hdr, l.type_basicsize) - le_i64(&base_hdr, l.type_basicsize) - 8 * nslots;
        let same_items = le_i64(hdr, l.type_itemsize) == le_i64(&base_hdr, l.type_itemsize);
        Ok(!(same_items && (0..=16).contains(&extra)))
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

    /// Whether the object at `addr` is a `random.Random` (or subclass) instance.
    fn is_random(&mut self, addr: u64) -> Result<bool> {
        let type_addr = self.ptr(addr + self.layout().object_type as u64)?;
        Ok(self.type_shape(type_addr)?.c_base == Some(KnownCType::Random))
    }

    /// Which of the C types we read fields of a type is (static types only: a class
    /// statement cannot take their names).
    fn known_c_type(&mut self, hdr: &[u8]) -> Result<Option<KnownCType>> {
        let l = self.layout();
        let name = self.c_string(le_u64(hdr, l.type_name), 64)?;
        let Some(known) = KnownCType::from_type_name(&name) else { return Ok(None) };
        // The dotted name is the C type's (some are heap types made from a spec, mutable
        // on older versions); a class statement gives none. Its instances must also hold
        // every field read.
        let end = known.last_field_end(&l);
        Ok(Some(known).filter(|_| end.is_some_and(|end| le_i64(hdr, l.type_basicsize) >= end as i64)))
    }

    fn type_shape(&mut self, type_addr: u64) -> Result<TypeShape> {
        if let Some(s) = self.type_cache.get(&type_addr) {
            return Ok(s.clone());
        }
        let l = self.layout();
        let hdr = self.read(type_addr, l.type_mro + 8)?;
        let flags = le_u64(&hdr, l.type_flags);
        let mut builtin = self.py.symbols.types.get(&type_addr).copied();
        let mut c_state = false;
        let mut c_base = None;
        if builtin.is_none() {
            // A subclass of a builtin: decode the builtin part by walking tp_base. A C type
            // on the way (_random.Random) keeps state we cannot see, unless it is one whose
            // fields we read.
            c_base = self.known_c_type(&hdr)?;
            c_state = c_base.is_none() && self.is_c_type(type_addr, &hdr)?;
            let mut base = le_u64(&hdr, l.type_base);
            let mut hops = 0;
            while base != 0 && hops < 64 {
                if let Some(b) = self.py.symbols.types.get(&base) {
                    if *b != BuiltinType::Object {
                        builtin = Some(*b);
                    }
                    break;
                }
                let base_hdr = self.read(base, l.type_mro + 8)?;
                match self.known_c_type(&base_hdr)? {
                    Some(known) if c_base.is_none() => c_base = Some(known),
                    _ => c_state |= self.is_c_type(base, &base_hdr)?,
                }
                base = le_u64(&base_hdr, l.type_base);
                hops += 1;
            }
        }
        let mut by_name = None;
        if builtin.is_none() && flags & TPFLAGS_HEAPTYPE == 0 {
            let name = self.c_string(le_u64(&hdr, l.type_name), 64)?;
            by_name = crate::process::TYPES_BY_NAME.iter().find(|(n, _)| *n == name).map(|&(_, b)| b);
        }
        let shape = TypeShape { builtin, by_name, c_state, c_base, flags, basicsize: le_i64(&hdr, l.type_basicsize), dictoffset: le_i64(&hdr, l.type_dictoffset) };
        self.type_cache.insert(type_addr, shape.clone());
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

    fn decode_instance(&mut self, addr: u64, type_addr: u64, shape: &TypeShape) -> Result<Value> {
        if shape.flags & TPFLAGS_BASE_EXC_SUBCLASS != 0 {
            return self.decode_exception(addr);
        }
        if shape.flags & TPFLAGS_TYPE_SUBCLASS != 0 {
            return self.decode_type(addr);
        }
        if let (Some(known), true) = (shape.c_base, self.limits.deep) {
            return self.decode_known_c(addr, type_addr, shape, known);
        }
        let base = match shape.builtin {
            Some(b @ (BuiltinType::Int | BuiltinType::Float | BuiltinType::Str | BuiltinType::Bytes | BuiltinType::Tuple
            | BuiltinType::List | BuiltinType::Dict | BuiltinType::Set | BuiltinType::FrozenSet | BuiltinType::Complex
            | BuiltinType::ByteArray)) => {
                Some(Box::new(self.decode_builtin(addr, b)?))
            }
            _ => None,
        };
        // Static C types, and heap C types made from a spec (immutable: Python classes
        // never are), keep their state in C fields we cannot rebuild.
        if (shape.flags & TPFLAGS_HEAPTYPE == 0 || shape.flags & TPFLAGS_IMMUTABLETYPE != 0) && shape.builtin.is_none() {
            let name_ptr = self.ptr(type_addr + self.layout().type_name as u64)?;
            // "_collections._tuplegetter" (3.11), "collections._tuplegetter" (3.12+)
            if self.c_string(name_ptr, 64)?.ends_with("collections._tuplegetter") {
                return self.decode_tuplegetter(addr);
            }
        }
        // A struct sequence (time.struct_time, os.stat_result) is a C type whose whole
        // state is its items, those past its visible length (st_mtime, tm_zone) included.
        let struct_fields = match base.as_deref() {
            Some(Value::Tuple(_)) if self.limits.deep => self.struct_sequence_fields(type_addr)?,
            _ => None,
        };
        if struct_fields.is_none() && ((shape.c_state && self.limits.deep) || ((shape.flags & TPFLAGS_HEAPTYPE == 0 || shape.flags & TPFLAGS_IMMUTABLETYPE != 0) && base.is_none())) {
            return Ok(Value::Opaque);
        }
        let dict = self.instance_dict(addr, type_addr, shape)?;
        let mut slots = if self.limits.deep { self.instance_slots(addr, type_addr)? } else { vec![] };
        let mut base = base;
        if let Some(n_fields) = struct_fields {
            if let Some(b) = base.as_deref_mut() {
                if let Value::Tuple(items) = b {
                    let visible = items.len();
                    if n_fields > visible && n_fields < 1024 {
                        let hidden = self.pointer_array(addr + self.layout().tuple_items as u64 + 8 * visible as u64, n_fields - visible)?;
                        items.extend(hidden);
                    }
                    slots.clear();
                }
            }
        }
        Ok(Value::Instance { dict, slots, base })
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

    /// deque, defaultdict and OrderedDict (and Python classes over them), rebuilt the way
    /// pickle does: `deque((), maxlen)` then its items; a dict subclass instance whose
    /// `default_factory` is set like a slot; an OrderedDict's items in its own order
    /// (its linked list, which `move_to_end` makes differ from the dict's).
    fn decode_known_c(&mut self, addr: u64, type_addr: u64, shape: &TypeShape, known: KnownCType) -> Result<Value> {
        let l = self.layout();
        let dict = self.instance_dict(addr, type_addr, shape)?;
        match known {
            KnownCType::Deque => {
                let len = self.len_of(addr)?;
                if len > self.limits.max_len {
                    return Err(Error::Limit(format!("deque of {len} items at {addr:#x}")));
                }
                let raw = self.read(addr, l.deque_maxlen + 8)?;
                let (mut block, mut index, maxlen) = (le_u64(&raw, l.deque_leftblock), le_i64(&raw, l.deque_leftindex), le_i64(&raw, l.deque_maxlen));
                let per_block = ((l.deque_block_rightlink - l.deque_block_data) / 8) as i64;
                if !(0..per_block).contains(&index) {
                    return Err(Error::corrupt(addr, "deque index outside its block"));
                }
                let mut items = Vec::with_capacity(len);
                let mut data = self.read(block, l.deque_block_rightlink + 8)?;
                while items.len() < len {
                    if index == per_block {
                        block = le_u64(&data, l.deque_block_rightlink);
                        data = self.read(block, l.deque_block_rightlink + 8)?;
                        index = 0;
                    }
                    let item = le_u64(&data, l.deque_block_data + 8 * index as usize);
                    items.push(self.object(item).ok_or_else(|| Error::corrupt(addr, "null item in a deque"))?);
                    index += 1;
                }
                // addr + 1 may be the instance's values-only dict (see split_values_dict).
                let listitems = self.synthetic(addr + 2, BuiltinType::List, Value::List(items));
                let empty = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![]));
                let mut args = vec![empty];
                if maxlen >= 0 {
                    args.push(self.synthetic_int(addr + 4, maxlen));
                }
                let args = self.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(args));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "deque without a type"))?;
                Ok(Value::Reduce { callable, args, state: dict, listitems: Some(listitems), dictitems: None })
            }
            KnownCType::DefaultDict | KnownCType::OrderedDict => {
                let mut base = self.decode_builtin(addr, BuiltinType::Dict)?;
                let mut slots = self.instance_slots(addr, type_addr)?;
                if known == KnownCType::DefaultDict {
                    let factory = self.ptr(addr + l.defaultdict_factory as u64)?;
                    slots.push(("default_factory".into(), self.object(factory)));
                } else if let Value::Dict(pairs) = &mut base {
                    let by_key: HashMap<ObjId, ObjId> = pairs.iter().copied().collect();
                    let mut ordered = Vec::with_capacity(pairs.len());
                    let mut node = self.ptr(addr + l.odict_first as u64)?;
                    while node != 0 && ordered.len() < pairs.len() {
                        let raw = self.read(node, l.odictnode_next + 8)?;
                        let key = self.object(le_u64(&raw, l.odictnode_key));
                        match key.and_then(|k| by_key.get(&k).map(|&v| (k, v))) {
                            Some(pair) => ordered.push(pair),
                            None => return Err(Error::corrupt(addr, "OrderedDict order names a key its dict lacks")),
                        }
                        node = le_u64(&raw, l.odictnode_next);
                    }
                    if ordered.len() != pairs.len() || node != 0 {
                        return Err(Error::corrupt(addr, "OrderedDict order and dict differ in length"));
                    }
                    *pairs = ordered;
                }
                Ok(Value::Instance { dict, slots, base: Some(Box::new(base)) })
            }
            KnownCType::Count => {
                // count(start, step): the C counter until it would overflow, then an int.
                let raw = self.read(addr, l.count_long_step + 8)?;
                let start = match self.object(le_u64(&raw, l.count_long_cnt)) {
                    Some(big) => big,
                    None => self.synthetic_int(addr + 2, le_i64(&raw, l.count_cnt)),
                };
                let step = self.object(le_u64(&raw, l.count_long_step));
                Ok(Value::Rebuilt { type_name: "itertools.count".into(), args: vec![Some(start), step], dict: None })
            }
            KnownCType::Partial => {
                // Its pickle form: cls(fn) then __setstate__((fn, args, kw, dict)).
                let raw = self.read(addr, l.partial_dict + 8)?;
                let fn_ = self.object(le_u64(&raw, l.partial_fn)).ok_or_else(|| Error::corrupt(addr, "partial without a function"))?;
                let none = Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n));
                let mut state = vec![fn_];
                for at in [l.partial_args, l.partial_kw, l.partial_dict] {
                    if let Some(item) = self.object(le_u64(&raw, at)).or(none) {
                        state.push(item);
                    }
                }
                if state.len() != 4 {
                    return Err(Error::corrupt(addr, "partial without args"));
                }
                let state = self.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(state));
                let args = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![fn_]));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: Some(state), listitems: None, dictitems: None })
            }
            KnownCType::Date | KnownCType::DateTime | KnownCType::Time => {
                // The pickle form: cls(packed bytes[, tzinfo]), fold in the top bit of the
                // month (datetime) or hour (time) byte.
                let (data_at, len, fold_at, fold_byte, tz) = match known {
                    KnownCType::Date => (l.date_data, 4, None, 0, None),
                    KnownCType::DateTime => (l.datetime_data, 10, Some(l.datetime_fold), 2, Some((l.datetime_hastzinfo, l.datetime_tzinfo))),
                    _ => (l.time_data, 6, Some(l.time_fold), 0, Some((l.time_hastzinfo, l.time_tzinfo))),
                };
                let raw = self.read(addr, known.last_field_end(&l).unwrap_or(0))?;
                let mut packed = raw[data_at..data_at + len].to_vec();
                if fold_at.is_some_and(|at| raw[at] != 0) {
                    packed[fold_byte] |= 0x80;
                }
                let mut args = vec![self.synthetic(addr + 2, BuiltinType::Bytes, Value::Bytes(packed))];
                if let Some((has_at, tz_at)) = tz {
                    if raw[has_at] != 0 {
                        args.extend(self.object(le_u64(&raw, tz_at)));
                    }
                }
                let args = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(args));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
            }
            KnownCType::TimeDelta => {
                let raw = self.read(addr, l.delta_microseconds + 4)?;
                let field = |at: usize| i32::from_le_bytes(raw[at..at + 4].try_into().unwrap_or([0; 4])) as i64;
                let (days, seconds, micros) = (field(l.delta_days), field(l.delta_seconds), field(l.delta_microseconds));
                let args = vec![self.synthetic_int(addr + 2, days), self.synthetic_int(addr + 3, seconds), self.synthetic_int(addr + 4, micros)];
                let args = self.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(args));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
            }
            KnownCType::TimeZone => {
                let raw = self.read(addr, l.timezone_name.max(l.timezone_offset) + 8)?;
                let mut args: Vec<ObjId> = self.object(le_u64(&raw, l.timezone_offset)).into_iter().collect();
                args.extend(self.object(le_u64(&raw, l.timezone_name)));
                let args = self.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(args));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
            }
            KnownCType::Decimal => {
                let text = self.decimal_text(addr)?;
                let text = self.synthetic(addr + 2, BuiltinType::Str, Value::Str(PyStr::Text(text)));
                let args = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![text]));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
            }
            KnownCType::Pattern => {
                let raw = self.read(addr, l.pattern_flags + 4)?;
                let source = self.object(le_u64(&raw, l.pattern_pattern));
                let flags = i32::from_le_bytes(raw[l.pattern_flags..l.pattern_flags + 4].try_into().unwrap_or([0; 4]));
                let flags = self.synthetic_int(addr + 2, flags as i64);
                Ok(Value::Rebuilt { type_name: "re.compile".into(), args: vec![source, Some(flags)], dict: None })
            }
            KnownCType::TextFile | KnownCType::BufferedFile | KnownCType::RawFile => self.decode_open_file(addr, known),
            KnownCType::StringIO | KnownCType::BytesIO => self.decode_memory_file(addr, type_addr, known),
            KnownCType::Lock | KnownCType::RLock => {
                // pyteleport._reducers.new_lock(kind, held, count): a new lock, taken again
                // as often as the moving (main) thread held it; one held by another thread
                // (which does not move) comes free.
                let (kind, held, count) = if known == KnownCType::Lock {
                    let locked = self.read(addr + l.lock_locked as u64, 1)?[0] != 0;
                    ("lock", locked, 1)
                } else {
                    let raw = self.read(addr, l.rlock_count + 8)?;
                    let (owner, count) = (le_u64(&raw, l.rlock_owner), le_i64(&raw, l.rlock_count));
                    let main_ident = match self.main_thread_state()? {
                        Some(ts) => self.ptr(ts + l.tstate_thread_id as u64)?,
                        None => 0,
                    };
                    let mine = count > 0 && owner != 0 && owner == main_ident;
                    ("RLock", mine, if mine { count } else { 1 })
                };
                let kind = self.synthetic(addr + 2, BuiltinType::Str, Value::Str(PyStr::Text(kind.into())));
                let held = self.synthetic_int(addr + 3, held as i64);
                let count = self.synthetic_int(addr + 4, count);
                Ok(self.call_reducer(addr + 5, Reducer::NewLock, vec![kind, held, count], None))
            }
            KnownCType::Chain | KnownCType::Islice | KnownCType::Repeat | KnownCType::Cycle | KnownCType::Accumulate | KnownCType::ItemGetter | KnownCType::AttrGetter => {
                self.decode_itertool(addr, known)
            }
            KnownCType::Namespace => {
                let args = self.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(vec![]));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: dict, listitems: None, dictitems: None })
            }
            KnownCType::LruCache => {
                // pyteleport._reducers.lru_cached(maxsize, typed, func, entries, kwd_mark):
                // a new wrapper whose cache is filled again with the same entries, oldest
                // first (its eviction order), without calling the function.
                let raw = self.read(addr, l.lru_kwd_mark + 8)?;
                let maxsize = le_i64(&raw, l.lru_maxsize);
                let cache = le_u64(&raw, l.lru_cache);
                let mut flat = Vec::new();
                let mut push = |me: &mut Self, key: u64, result: u64| {
                    if let (Some(k), Some(r)) = (me.object(key), me.object(result)) {
                        flat.push(k);
                        flat.push(r);
                    }
                };
                if maxsize < 0 {
                    // Unbounded: the dict maps keys to results, in insertion order.
                    for (k, r) in self.dict_entries(cache)? {
                        push(self, k, r);
                    }
                } else if maxsize > 0 {
                    // Bounded: results hang on a ring of links from the least recently used.
                    let limit = self.len_of(cache)? + 1;
                    let mut link = le_u64(&raw, l.lru_root_next);
                    let mut seen = 0;
                    while link != addr && link != 0 {
                        seen += 1;
                        if seen > limit {
                            return Err(Error::corrupt(addr, "lru_cache ring longer than its cache"));
                        }
                        let node = self.read(link, l.lru_link_result + 8)?;
                        push(self, le_u64(&node, l.lru_link_key), le_u64(&node, l.lru_link_result));
                        link = le_u64(&node, l.lru_link_next);
                    }
                }
                let none = Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n));
                let maxsize = if maxsize < 0 { none } else { Some(self.synthetic_int(addr + 2, maxsize)) };
                let typed = i32::from_le_bytes(raw[l.lru_typed..l.lru_typed + 4].try_into().unwrap_or([0; 4]));
                let typed = self.synthetic_int(addr + 3, typed as i64);
                let func = self.object(le_u64(&raw, l.lru_func));
                let entries = self.synthetic(addr + 4, BuiltinType::List, Value::List(flat));
                let kwd_mark = self.object(le_u64(&raw, l.lru_kwd_mark)).or(none);
                let hits = Some(self.synthetic_int(addr + 7, le_i64(&raw, l.lru_hits).max(0)));
                let misses = Some(self.synthetic_int(addr + 8, le_i64(&raw, l.lru_misses).max(0)));
                let args: Vec<ObjId> = [maxsize, Some(typed), func, Some(entries), kwd_mark, hits, misses]
                    .into_iter()
                    .collect::<Option<_>>()
                    .ok_or_else(|| Error::corrupt(addr, "lru_cache wrapper without its function"))?;
                Ok(self.call_reducer(addr + 5, Reducer::LruCached, args, dict))
            }
            KnownCType::Random => {
                // random.Random's own pickle form: cls() then setstate((3, 624 words +
                // index, gauss_next)). Other attributes of a subclass are not carried.
                let raw = self.read(addr, l.random_state + 624 * 4)?;
                let index = i32::from_le_bytes(raw[l.random_index..l.random_index + 4].try_into().unwrap_or([0; 4]));
                let mut words = Vec::with_capacity(625);
                for i in 0..624 {
                    let at = l.random_state + 4 * i;
                    let word = u32::from_le_bytes(raw[at..at + 4].try_into().unwrap_or([0; 4]));
                    words.push(self.synthetic_int(addr + 8 + i as u64, word as i64));
                }
                words.push(self.synthetic_int(addr + 2, index as i64));
                let gauss_next = match self.instance_attribute(addr, type_addr, shape, "gauss_next")? {
                    Some(v) => self.object(v),
                    None => Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n)),
                };
                let internal = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(words));
                let version = self.synthetic_int(addr + 4, 3);
                let mut state = vec![version, internal];
                state.extend(gauss_next);
                let state = self.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(state));
                let args = self.synthetic(addr + 6, BuiltinType::Tuple, Value::Tuple(vec![]));
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
                Ok(Value::Reduce { callable, args, state: Some(state), listitems: None, dictitems: None })
            }
        }
    }

    /// An open file, reopened in the new process by `pyteleport._reducers.reopen` at the
    /// same position; what its buffers hold but have not written yet is written there
    /// first (the original never flushes it: it is ended, or it writes it to its own
    /// copy after a checkpoint). Only with the descriptor table read at the stop.
    fn decode_open_file(&mut self, addr: u64, known: KnownCType) -> Result<Value> {
        let l = self.layout();
        let Some(files) = self.open_files.clone() else { return Ok(Value::Opaque) };
        let type_name = |me: &mut Self, obj: u64| -> Result<String> {
            let t = me.ptr(obj + l.object_type as u64)?;
            let name = me.ptr(t + l.type_name as u64)?;
            me.c_string(name, 64)
        };
        let text = (known == KnownCType::TextFile).then_some(addr);
        let buffered = match known {
            KnownCType::TextFile => Some(self.ptr(addr + l.textio_buffer as u64)?),
            KnownCType::BufferedFile => Some(addr),
            _ => None,
        };
        if let Some(b) = buffered {
            if !matches!(type_name(self, b)?.as_str(), "_io.BufferedReader" | "_io.BufferedWriter" | "_io.BufferedRandom") {
                return Ok(Value::Opaque);
            }
        }
        let raw = match buffered {
            Some(b) => self.ptr(b + l.buffered_raw as u64)?,
            None => addr,
        };
        if type_name(self, raw)? != "_io.FileIO" {
            return Ok(Value::Opaque);
        }
        let raw_type = self.ptr(raw + l.object_type as u64)?;
        let raw_shape = self.type_shape(raw_type)?;
        let shown_name = match self.instance_attribute(raw, raw_type, &raw_shape, "name")? {
            Some(n) if self.is_exact(n, BuiltinType::Str)? => n,
            _ => return Ok(Value::Opaque), // opened from a descriptor number: nothing to reopen
        };
        let kind = match known {
            KnownCType::TextFile => "text",
            KnownCType::BufferedFile => "buffered",
            _ => "raw",
        };
        let fd = i32::from_le_bytes(self.read(raw + l.fileio_fd as u64, 4)?.try_into().unwrap_or([0; 4]));
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
        let kind_id = synth(self, BuiltinType::Str, Value::Str(PyStr::Text(kind.into())));
        let shown_id = self.object(shown_name).ok_or_else(|| Error::corrupt(addr, "file without a name"))?;
        let Some(open) = files.get(&fd) else {
            // Closed: made as a closed file of the same kind.
            let mode = match mode_attr {
                Some(m) => self.object(m),
                None => Some(synth(self, BuiltinType::Str, Value::Str(PyStr::Text(if kind == "text" { "r" } else { "rb" }.into())))),
            };
            let args = synth(self, BuiltinType::Tuple, Value::Tuple([Some(kind_id), Some(shown_id), mode].into_iter().flatten().collect()));
            let callable = synth(self, BuiltinType::Function, Value::Global { module: reducers::MODULE.into(), name: Reducer::ClosedFile.name().into(), state: None });
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
                    libc::O_WRONLY => if append { "a" } else { "w" },
                    libc::O_RDWR => if append { "a+" } else { "r+" },
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
            let raw_bytes = self.read(b, l.buffered_write_end.max(l.buffered_raw_pos).max(l.buffered_buffer) + 8)?;
            let (raw_pos, pos, read_end) = (le_i64(&raw_bytes, l.buffered_raw_pos), le_i64(&raw_bytes, l.buffered_pos), le_i64(&raw_bytes, l.buffered_read_end));
            let (write_pos, write_end) = (le_i64(&raw_bytes, l.buffered_write_pos), le_i64(&raw_bytes, l.buffered_write_end));
            if (read_end != -1 || write_end != -1) && raw_pos >= 0 {
                position -= raw_pos - pos;
            }
            if write_end != -1 && write_end > write_pos && write_pos >= 0 && write_end - write_pos < (64 << 20) {
                let buf = le_u64(&raw_bytes, l.buffered_buffer);
                pending = self.read(buf + write_pos as u64, (write_end - write_pos) as usize)?;
                pending_at = open.pos as i64 - raw_pos.max(0) + write_pos;
            }
        }
        let (mut encoding, mut errors, mut newline) = (None, None, None);
        if let Some(t) = text {
            let raw_text = self.read(t, l.textio_decoded_chars_used.max(l.textio_pending_bytes).max(l.textio_readnl).max(l.textio_errors) + 8)?;
            let encoding_addr = le_u64(&raw_text, l.textio_encoding);
            let encoding_name = if encoding_addr != 0 && self.is_exact(encoding_addr, BuiltinType::Str)? { self.read_str(encoding_addr)?.as_text().to_lowercase().replace('_', "-") } else { String::new() };
            encoding = self.object(encoding_addr);
            errors = self.object(le_u64(&raw_text, l.textio_errors));
            newline = match self.object(le_u64(&raw_text, l.textio_readnl)) {
                Some(nl) => Some(nl),
                None if raw_text[l.textio_readtranslate] != 0 => None,
                None => Some(synth(self, BuiltinType::Str, Value::Str(PyStr::Text(String::new())))),
            };
            // Text written but not passed to the buffer yet (encoded bytes, or ASCII str).
            let chunks = le_u64(&raw_text, l.textio_pending_bytes);
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
            let decoded = le_u64(&raw_text, l.textio_decoded_chars);
            if decoded != 0 {
                let used = le_i64(&raw_text, l.textio_decoded_chars_used).max(0) as usize;
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
        let none = Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n));
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
        let callable = synth(self, BuiltinType::Function, Value::Global { module: reducers::MODULE.into(), name: Reducer::Reopen.name().into(), state: None });
        Ok(Value::Reduce { callable, args, state: None, listitems: None, dictitems: None })
    }

    /// An itertools object as one that yields the same items from here on, made by
    /// `pyteleport._reducers` helpers from what is left (not their pickle support, which
    /// 3.12+ deprecates with a warning on stderr).
    fn decode_itertool(&mut self, addr: u64, known: KnownCType) -> Result<Value> {
        let l = self.layout();
        let none = Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n));
        let raw = self.read(addr, known.last_field_end(&l).unwrap_or(0))?;
        let or_none = |me: &mut Self, at: usize| me.object(le_u64(&raw, at)).or(none);
        let (helper, args): (Reducer, Vec<Option<ObjId>>) = match known {
            KnownCType::Chain => (Reducer::ChainRest, vec![or_none(self, l.chain_active), or_none(self, l.chain_source)]),
            KnownCType::Islice => {
                let (next, stop, step, cnt) = (le_i64(&raw, l.islice_next), le_i64(&raw, l.islice_stop), le_i64(&raw, l.islice_step), le_i64(&raw, l.islice_cnt));
                let start = Some(self.synthetic_int(addr + 2, (next - cnt).max(0)));
                let stop = if stop < 0 { none } else { Some(self.synthetic_int(addr + 3, (stop - cnt).max(0))) };
                let step = Some(self.synthetic_int(addr + 4, step.max(1)));
                (Reducer::IsliceRest, vec![or_none(self, l.islice_it), start, stop, step])
            }
            KnownCType::Accumulate => (
                Reducer::AccumulateRest,
                vec![or_none(self, l.accumulate_it), or_none(self, l.accumulate_binop), or_none(self, l.accumulate_total), or_none(self, l.accumulate_initial)],
            ),
            KnownCType::ItemGetter => {
                let nitems = Some(self.synthetic_int(addr + 2, le_i64(&raw, l.itemgetter_nitems)));
                (Reducer::ItemGetterOf, vec![nitems, or_none(self, l.itemgetter_item)])
            }
            KnownCType::AttrGetter => (Reducer::AttrGetterOf, vec![or_none(self, l.attrgetter_attr)]),
            KnownCType::Repeat => {
                let cnt = le_i64(&raw, l.repeat_cnt);
                let times = if cnt < 0 { none } else { Some(self.synthetic_int(addr + 2, cnt)) };
                (Reducer::RepeatRest, vec![or_none(self, l.repeat_element), times])
            }
            _ => {
                let index = Some(self.synthetic_int(addr + 2, le_i64(&raw, l.cycle_index).max(0)));
                (Reducer::CycleRest, vec![or_none(self, l.cycle_it), or_none(self, l.cycle_saved), index])
            }
        };
        let args: Vec<ObjId> = args.into_iter().collect::<Option<_>>().ok_or_else(|| Error::corrupt(addr, "itertools object without its None"))?;
        Ok(self.call_reducer(addr + 5, helper, args, None))
    }

    /// `pyteleport._reducers.<helper>(*args)` in the new process, then `state` as for any
    /// reduced object; the argument tuple and the callable are synthetic nodes at
    /// `pseudo` and `pseudo + 1`.
    fn call_reducer(&mut self, pseudo: u64, helper: Reducer, args: Vec<ObjId>, state: Option<ObjId>) -> Value {
        debug_assert!(helper.accepts(args.len()), "{helper:?} called with {} arguments", args.len());
        let args = self.synthetic(pseudo, BuiltinType::Tuple, Value::Tuple(args));
        let callable = self.synthetic(pseudo + 1, BuiltinType::Function, Value::Global { module: reducers::MODULE.into(), name: helper.name().into(), state: None });
        Value::Reduce { callable, args, state, listitems: None, dictitems: None }
    }

    /// A closed in-memory file of the given kind ("text" or "buffered").
    fn closed_memory_file(&mut self, addr: u64, kind: &str) -> Value {
        let kind = self.synthetic(addr + 2, BuiltinType::Str, Value::Str(PyStr::Text(kind.into())));
        self.call_reducer(addr + 3, Reducer::ClosedFile, vec![kind, kind, kind], None)
    }

    /// StringIO and BytesIO through their own `__setstate__`: (value, [newline,] position,
    /// __dict__). A closed one is made closed.
    fn decode_memory_file(&mut self, addr: u64, type_addr: u64, known: KnownCType) -> Result<Value> {
        const STATE_ACCUMULATING: i32 = 2;
        let l = self.layout();
        let none = Some(self.py.symbols.none).filter(|&n| n != 0).and_then(|n| self.object(n));
        let mut state = Vec::new();
        if known == KnownCType::StringIO {
            let raw = self.read(addr, l.stringio_dict + 8)?;
            let (size, pos) = (le_i64(&raw, l.stringio_string_size), le_i64(&raw, l.stringio_pos));
            if raw[l.stringio_closed] != 0 {
                return Ok(self.closed_memory_file(addr, "text"));
            }
            if !(0..=self.limits.max_len as i64).contains(&size) {
                return Err(Error::corrupt(addr, "StringIO size out of range"));
            }
            let state_kind = i32::from_le_bytes(raw[l.stringio_state..l.stringio_state + 4].try_into().unwrap_or([0; 4]));
            let mut chars: Vec<u32> = Vec::with_capacity(size as usize);
            if state_kind == STATE_ACCUMULATING {
                // Written only at its end so far: the text sits in a writer (3.12+) or an
                // accumulator of string lists (3.11), not in the character buffer.
                if l.has(l.stringio_writer_buffer) {
                    let buffer = le_u64(&raw, l.stringio_writer_buffer);
                    if buffer != 0 {
                        let used = le_i64(&raw, l.stringio_writer_pos).max(0) as usize;
                        chars.extend(self.read_str(buffer)?.code_points().into_iter().take(used));
                    }
                } else {
                    for list_at in [l.stringio_accu_large, l.stringio_accu_small] {
                        let list = le_u64(&raw, list_at);
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
                let buf = le_u64(&raw, l.stringio_buf);
                chars.extend(self.read(buf, size as usize * 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))));
            }
            let text = match chars.iter().map(|&c| char::from_u32(c)).collect::<Option<String>>() {
                Some(t) => PyStr::Text(t),
                None => PyStr::CodePoints(chars),
            };
            state.push(self.synthetic(addr + 2, BuiltinType::Str, Value::Str(text)));
            state.extend(self.object(le_u64(&raw, l.stringio_readnl)).or(none));
            state.push(self.synthetic_int(addr + 3, pos.max(0)));
            state.extend(self.object(le_u64(&raw, l.stringio_dict)).or(none));
        } else {
            let raw = self.read(addr, l.bytesio_dict + 8)?;
            let (size, pos) = (le_i64(&raw, l.bytesio_string_size), le_i64(&raw, l.bytesio_pos));
            let buf = le_u64(&raw, l.bytesio_buf);
            if buf == 0 {
                return Ok(self.closed_memory_file(addr, "buffered")); // closed: its buffer is gone
            }
            if !(0..=self.limits.max_bytes as i64).contains(&size) {
                return Err(Error::corrupt(addr, "BytesIO size out of range"));
            }
            let data = self.read(buf + l.bytes_data as u64, size as usize)?;
            state.push(self.synthetic(addr + 2, BuiltinType::Bytes, Value::Bytes(data)));
            state.push(self.synthetic_int(addr + 3, pos.max(0)));
            state.extend(self.object(le_u64(&raw, l.bytesio_dict)).or(none));
        }
        let expected = if known == KnownCType::StringIO { 4 } else { 3 };
        if state.len() != expected {
            return Err(Error::corrupt(addr, "in-memory file without its None"));
        }
        let state = self.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(state));
        let args = self.synthetic(addr + 6, BuiltinType::Tuple, Value::Tuple(vec![]));
        let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "object without a type"))?;
        Ok(Value::Reduce { callable, args, state: Some(state), listitems: None, dictitems: None })
    }

    /// A Decimal as the exact string it is made from again: sign, the coefficient (libmpdec
    /// words of 19 decimal digits, least significant first) and the exponent.
    fn decimal_text(&mut self, addr: u64) -> Result<String> {
        const NEGATIVE: u8 = 1;
        const INFINITE: u8 = 2;
        const NAN: u8 = 4;
        const SIGNALING_NAN: u8 = 8;
        let l = self.layout();
        let raw = self.read(addr, l.decimal_data + 8)?;
        let (flags, exp, len, data) = (raw[l.decimal_flags], le_i64(&raw, l.decimal_exp), le_i64(&raw, l.decimal_len), le_u64(&raw, l.decimal_data));
        if !(0..1 << 24).contains(&len) {
            return Err(Error::corrupt(addr, "Decimal with an impossible length"));
        }
        let words: Vec<u64> = self.read(data, len as usize * 8)?.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
        let mut digits = String::new();
        for (i, w) in words.iter().rev().enumerate() {
            if *w >= 10_000_000_000_000_000_000 {
                return Err(Error::corrupt(addr, "Decimal word out of range"));
            }
            if i == 0 { digits.push_str(&w.to_string()) } else { digits.push_str(&format!("{w:019}")) }
        }
        let sign = if flags & NEGATIVE != 0 { "-" } else { "" };
        Ok(if flags & INFINITE != 0 {
            format!("{sign}Infinity")
        } else if flags & (NAN | SIGNALING_NAN) != 0 {
            // A NaN's payload is its coefficient (shown only when not zero).
            let payload = digits.trim_start_matches('0');
            format!("{sign}{}{payload}", if flags & SIGNALING_NAN != 0 { "sNaN" } else { "NaN" })
        } else {
            format!("{sign}{}E{exp}", if digits.is_empty() { "0" } else { &digits })
        })
    }

    /// The address of an instance attribute stored in its `__dict__` (or values), if set.
    fn instance_attribute(&mut self, addr: u64, type_addr: u64, shape: &TypeShape, name: &str) -> Result<Option<u64>> {
        let l = self.layout();
        let pairs: Vec<(u64, u64)> = match self.instance_dict_source(addr, shape)? {
            DictSource::None => return Ok(None),
            DictSource::Dict(d) => self.dict_entries(d)?,
            DictSource::Values { values, inline } => {
                let keys = self.ptr(type_addr + l.heaptype_cached_keys as u64)?;
                if keys == 0 {
                    return Ok(None);
                }
                let key_addrs = self.dict_keys_entries(keys)?;
                let mut pairs = Vec::new();
                for ix in self.values_order(values, inline)? {
                    if let Some(&(k, _)) = key_addrs.get(ix) {
                        pairs.push((k, self.ptr(values + l.dictvalues_values as u64 + 8 * ix as u64)?));
                    }
                }
                pairs
            }
        };
        for (k, v) in pairs {
            if k != 0 && v != 0 && self.is_exact(k, BuiltinType::Str)? && self.read_str(k)?.as_text() == name {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// A namedtuple field accessor: `_tuplegetter(index, doc)`. The index is a C integer,
    /// carried as a synthetic int node.
    fn decode_tuplegetter(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let raw = self.read(addr, l.tuplegetter_index.max(l.tuplegetter_doc) + 8)?;
        let index = le_i64(&raw, l.tuplegetter_index);
        if !(0..1 << 30).contains(&index) {
            return Err(Error::corrupt(addr, "namedtuple field index out of range"));
        }
        let index_id = self.synthetic_int(addr + 1, index);
        let doc = self.object(le_u64(&raw, l.tuplegetter_doc));
        Ok(Value::Rebuilt { type_name: "_collections._tuplegetter".into(), args: vec![Some(index_id), doc], dict: None })
    }

    /// The instance `__dict__`, wherever this version keeps it (managed dict, inline or
    /// split values, or `tp_dictoffset`). Values-only instances become a synthetic dict node.
    fn instance_dict(&mut self, addr: u64, type_addr: u64, shape: &TypeShape) -> Result<Option<ObjId>> {
        match self.instance_dict_source(addr, shape)? {
            DictSource::None => Ok(None),
            DictSource::Dict(d) => Ok(self.object(d)),
            DictSource::Values { values, inline } => self.split_values_dict(addr, type_addr, values, inline),
        }
    }

    /// Where an instance keeps its attributes, wherever this version puts them.
    fn instance_dict_source(&mut self, addr: u64, shape: &TypeShape) -> Result<DictSource> {
        let minor = self.py.version.minor;
        if shape.flags & TPFLAGS_MANAGED_DICT != 0 {
            let slot = self.ptr(addr - 24)?;
            if minor == 12 && slot & 1 == 1 {
                // 3.12 tags a values pointer by storing it minus one.
                return Ok(DictSource::Values { values: slot + 1, inline: false });
            }
            if slot != 0 {
                return Ok(DictSource::Dict(slot));
            }
            if minor == 11 {
                let values = self.ptr(addr - 32)?;
                if values != 0 {
                    return Ok(DictSource::Values { values, inline: false });
                }
            }
            if minor >= 13 && shape.flags & TPFLAGS_INLINE_VALUES != 0 {
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

    /// (key, value) addresses of an instance's attributes, without creating nodes.
    pub fn instance_items(&mut self, addr: u64) -> Result<Vec<(u64, u64)>> {
        let type_addr = self.ptr(addr + self.layout().object_type as u64)?;
        let shape = self.type_shape(type_addr)?;
        match self.instance_dict_source(addr, &shape)? {
            DictSource::None => Ok(vec![]),
            DictSource::Dict(d) => self.dict_entries(d),
            DictSource::Values { values, inline } => {
                let l = self.layout();
                let keys = self.ptr(type_addr + l.heaptype_cached_keys as u64)?;
                if keys == 0 {
                    return Ok(vec![]);
                }
                let key_addrs = self.dict_keys_entries(keys)?;
                let mut out = Vec::new();
                for ix in self.values_order(values, inline)? {
                    let Some(&(k, _)) = key_addrs.get(ix) else { continue };
                    let v = self.ptr(values + l.dictvalues_values as u64 + 8 * ix as u64)?;
                    if k != 0 && v != 0 {
                        out.push((k, v));
                    }
                }
                Ok(out)
            }
        }
    }

    /// A dict rebuilt from shared keys (the type's cached keys) and a values array.
    fn split_values_dict(&mut self, owner: u64, type_addr: u64, values: u64, inline: bool) -> Result<Option<ObjId>> {
        let l = self.layout();
        let keys = self.ptr(type_addr + l.heaptype_cached_keys as u64)?;
        if keys == 0 {
            return Ok(None);
        }
        let key_addrs = self.dict_keys_entries(keys)?;
        let order = self.values_order(values, inline)?;
        let mut items = Vec::new();
        for ix in order {
            let Some(&(k, _)) = key_addrs.get(ix) else { continue };
            let v = self.ptr(values + l.dictvalues_values as u64 + 8 * ix as u64)?;
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
    fn values_order(&mut self, values: u64, inline: bool) -> Result<Vec<usize>> {
        let l = self.layout();
        if l.has(l.dictvalues_capacity) {
            let hdr = self.read(values, 4)?;
            let (capacity, size) = (hdr[l.dictvalues_capacity] as u64, hdr[l.dictvalues_size] as usize);
            if l.has(l.dictvalues_valid) && hdr[l.dictvalues_valid] == 0 && inline {
                return Ok(vec![]);
            }
            let order = self.read(values + l.dictvalues_values as u64 + 8 * capacity, size)?;
            return Ok(order.iter().map(|&b| b as usize).collect());
        }
        // 3.11/3.12: bytes before the values: [-1] prefix size, [-2] used, [-3-i] order.
        let prefix = self.read(values - 2, 2)?;
        let used = prefix[0] as usize;
        if used == 0 {
            return Ok(vec![]);
        }
        let raw = self.read(values - 2 - used as u64, used)?;
        Ok((0..used).map(|i| raw[used - 1 - i] as usize).collect())
    }

    fn instance_slots(&mut self, addr: u64, type_addr: u64) -> Result<Vec<(String, Option<ObjId>)>> {
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
                let raw = self.read(def, 24)?;
                let (ty, off) = (le_i32(&raw, l.memberdef_type), le_i64(&raw, l.memberdef_offset));
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

    fn decode_exception(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let raw = self.read(addr, l.exception_suppress_context + 8)?;
        let obj = |me: &mut Self, off: usize| me.object(le_u64(&raw, off));
        Ok(Value::Exception {
            args: obj(self, l.exception_args),
            dict: obj(self, l.exception_dict),
            context: obj(self, l.exception_context),
            cause: obj(self, l.exception_cause),
            suppress_context: raw.get(l.exception_suppress_context).copied().unwrap_or(0) != 0,
            notes: obj(self, l.exception_notes),
        })
    }

    fn decode_builtin(&mut self, addr: u64, kind: BuiltinType) -> Result<Value> {
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
                let raw = self.read(addr + l.complex_value as u64, 16)?;
                Value::Complex(f64::from_bits(le_u64(&raw, 0)), f64::from_bits(le_u64(&raw, 8)))
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
            BuiltinType::Dict => {
                let entries = self.dict_entries(addr)?;
                Value::Dict(entries.into_iter().filter_map(|(k, v)| Some((self.object(k)?, self.object(v)?))).collect())
            }
            BuiltinType::Set | BuiltinType::FrozenSet => {
                let items = self.set_entries(addr)?;
                let ids = items.into_iter().filter_map(|k| self.object(k)).collect();
                if kind == BuiltinType::Set { Value::Set(ids) } else { Value::FrozenSet(ids) }
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
                let raw = self.read(addr, l.method_self + 8)?;
                match (self.object(le_u64(&raw, l.method_func)), self.object(le_u64(&raw, l.method_self))) {
                    (Some(func), Some(self_)) => Value::Method { func, self_ },
                    _ => Value::Opaque,
                }
            }
            BuiltinType::CFunction => {
                let raw = self.read(addr, l.cfunction_module + 8)?;
                let def = le_u64(&raw, l.cfunction_def);
                let name_ptr = self.ptr(def + l.methoddef_name as u64)?;
                let name = self.c_string(name_ptr, 256)?;
                let self_addr = le_u64(&raw, l.cfunction_self);
                let module_addr = le_u64(&raw, l.cfunction_module);
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
                let raw = self.read(addr, callable.max(dict) + 8)?;
                match self.object(le_u64(&raw, callable)) {
                    Some(func) => Value::Rebuilt { type_name: name.into(), args: vec![Some(func)], dict: self.object(le_u64(&raw, dict)) },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Property => {
                let raw = self.read(addr, l.property_doc + 8)?;
                let args = [l.property_get, l.property_set, l.property_del, l.property_doc].iter().map(|&off| self.object(le_u64(&raw, off))).collect();
                Value::Rebuilt { type_name: "property".into(), args, dict: None }
            }
            BuiltinType::Slice => {
                let raw = self.read(addr, l.slice_step + 8)?;
                let args = [l.slice_start, l.slice_stop, l.slice_step].iter().map(|&off| self.object(le_u64(&raw, off))).collect();
                Value::Rebuilt { type_name: "slice".into(), args, dict: None }
            }
            BuiltinType::Range => {
                let raw = self.read(addr, l.range_step + 8)?;
                match (self.object(le_u64(&raw, l.range_start)), self.object(le_u64(&raw, l.range_stop)), self.object(le_u64(&raw, l.range_step))) {
                    (Some(start), Some(stop), Some(step)) => Value::Range { start, stop, step },
                    _ => Value::Opaque,
                }
            }
            BuiltinType::RangeIter => {
                let raw = self.read(addr, l.range_iter_len + 8)?;
                let index = if l.has(l.range_iter_index) { le_i64(&raw, l.range_iter_index) } else { 0 };
                Value::RangeIter { start: le_i64(&raw, l.range_iter_start), step: le_i64(&raw, l.range_iter_step), len: le_i64(&raw, l.range_iter_len), index }
            }
            BuiltinType::ListIter | BuiltinType::TupleIter | BuiltinType::StrIter => {
                let raw = self.read(addr, l.seq_iter_seq + 8)?;
                Value::SeqIter { seq: self.object(le_u64(&raw, l.seq_iter_seq)), index: le_i64(&raw, l.seq_iter_index) }
            }
            BuiltinType::Enumerate => {
                let raw = self.read(addr, l.enum_long_index + 8)?;
                match self.object(le_u64(&raw, l.enum_iter)) {
                    Some(iter) => Value::Enumerate { iter, index: le_i64(&raw, l.enum_index), long_index: self.object(le_u64(&raw, l.enum_long_index)) },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Zip => {
                let raw = self.read(addr, l.zip_strict + 4)?;
                match self.object(le_u64(&raw, l.zip_iters)) {
                    Some(iters) => Value::Zip { iters, strict: le_i32(&raw, l.zip_strict) != 0 },
                    None => Value::Opaque,
                }
            }
            // Iterators a loop may be consuming; made again as their own pickle forms do
            // (read only for a capture: a dump shows them by type and address).
            BuiltinType::Map | BuiltinType::Filter | BuiltinType::Reversed | BuiltinType::ListRevIter | BuiltinType::SetIter if !self.limits.deep => Value::Opaque,
            BuiltinType::SetIter => {
                // As its pickle form: an iterator over a list of the items still to come,
                // in the set's own table order.
                let raw = self.read(addr, l.setiter_len + 8)?;
                let set = le_u64(&raw, l.setiter_set);
                let (pos, left) = (le_i64(&raw, l.setiter_pos), le_i64(&raw, l.setiter_len));
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
                let raw = self.read(addr, l.map_func.max(l.map_iters) + 8)?;
                let iters = le_u64(&raw, l.map_iters);
                let mut args = vec![self.object(le_u64(&raw, l.map_func))];
                let n = self.len_of(iters)?;
                args.extend(self.pointer_array(iters + l.tuple_items as u64, n)?.into_iter().map(Some));
                Value::Rebuilt { type_name: "map".into(), args, dict: None }
            }
            BuiltinType::Filter => {
                let raw = self.read(addr, l.filter_func.max(l.filter_it) + 8)?;
                let args = vec![self.object(le_u64(&raw, l.filter_func)), self.object(le_u64(&raw, l.filter_it))];
                Value::Rebuilt { type_name: "filter".into(), args, dict: None }
            }
            BuiltinType::Reversed | BuiltinType::ListRevIter => {
                let (index_at, seq_at) = if kind == BuiltinType::Reversed { (l.reversed_index, l.reversed_seq) } else { (l.seq_iter_index, l.seq_iter_seq) };
                let raw = self.read(addr, index_at.max(seq_at) + 8)?;
                let type_addr = self.py.symbols.type_addr.get(&BuiltinType::Reversed).copied().unwrap_or(0);
                let callable = self.object(type_addr).ok_or_else(|| Error::corrupt(addr, "no reversed type"))?;
                // Exhausted: its sequence is gone; reversed(()) is as empty.
                let seq = match self.object(le_u64(&raw, seq_at)) {
                    Some(seq) => seq,
                    None => self.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(vec![])),
                };
                let args = self.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![seq]));
                let index = self.synthetic_int(addr + 4, le_i64(&raw, index_at));
                Value::Reduce { callable, args, state: Some(index), listitems: None, dictitems: None }
            }
            BuiltinType::DictKeyIter | BuiltinType::DictValueIter | BuiltinType::DictItemIter => {
                let raw = self.read(addr, l.dictiter_len + 8)?;
                Value::DictIter { dict: self.object(le_u64(&raw, l.dictiter_dict)), pos: le_i64(&raw, l.dictiter_pos), len: le_i64(&raw, l.dictiter_len) }
            }
            BuiltinType::BaseException => self.decode_exception(addr)?,
            BuiltinType::Descriptor | BuiltinType::MemberDescr => {
                let raw = self.read(addr, l.descr_name + 8)?;
                let name = self.read_str(le_u64(&raw, l.descr_name))?.as_text().into_owned();
                match self.object(le_u64(&raw, l.descr_type)) {
                    Some(owner) => Value::Descriptor { owner, name },
                    None => Value::Opaque,
                }
            }
            BuiltinType::Object => Value::Object,
            _ => Value::Opaque,
        })
    }

    pub(crate) fn is_exact(&mut self, addr: u64, kind: BuiltinType) -> Result<bool> {
        let t = self.ptr(addr + self.layout().object_type as u64)?;
        Ok(self.py.symbols.types.get(&t) == Some(&kind))
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
        Ok((0..n).filter_map(|i| self.object(le_u64(&raw, 8 * i))).collect())
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

    pub fn read_int(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let (negative, ndigits) = if l.has(l.long_lv_tag) {
            let tag = self.ptr(addr + l.long_lv_tag as u64)?;
            ((tag & 3) == 2, (tag >> 3) as usize)
        } else {
            let size = self.i64_at(addr + l.var_object_size as u64)?;
            (size < 0, size.unsigned_abs() as usize)
        };
        if ndigits > self.limits.max_len {
            return Err(Error::Limit(format!("int of {ndigits} digits")));
        }
        let raw = self.read(addr + l.long_digits as u64, 4 * ndigits.max(1))?;
        let digits: Vec<u32> = (0..ndigits).map(|i| le_u32(&raw, 4 * i) & 0x3fff_ffff).collect();
        Ok(Value::Int { negative, digits })
    }

    pub fn read_str(&mut self, addr: u64) -> Result<PyStr> {
        let l = self.layout();
        let hdr = self.read(addr, l.ascii_object_size)?;
        let length = le_i64(&hdr, l.ascii_length);
        if length < 0 || length as usize > self.limits.max_len {
            return Err(if length < 0 { Error::corrupt(addr, "negative str length") } else { Error::Limit(format!("str of {length} characters")) });
        }
        let state = le_u32(&hdr, l.ascii_state);
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
        let cps: Vec<u32> = (0..n)
            .map(|i| if width == 2 { u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]) as u32 } else { le_u32(&raw, 4 * i) })
            .collect();
        if cps.iter().all(|&c| char::from_u32(c).is_some()) {
            Ok(PyStr::Text(cps.iter().filter_map(|&c| char::from_u32(c)).collect()))
        } else {
            Ok(PyStr::CodePoints(cps))
        }
    }

    /// (key, value) addresses of a dict, in iteration order.
    pub fn dict_entries(&mut self, addr: u64) -> Result<Vec<(u64, u64)>> {
        let l = self.layout();
        let raw = self.read(addr, l.dict_values + 8)?;
        let keys = le_u64(&raw, l.dict_keys);
        let values = le_u64(&raw, l.dict_values);
        let used = le_i64(&raw, l.dict_used);
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
    fn dict_keys_entries(&mut self, keys: u64) -> Result<Vec<(u64, u64)>> {
        let l = self.layout();
        let hdr = self.read(keys, l.dictkeys_indices)?;
        let log2_index_bytes = hdr[l.dictkeys_log2_index_bytes] as u32;
        let kind = hdr[l.dictkeys_kind];
        let nentries = le_i64(&hdr, l.dictkeys_nentries);
        if log2_index_bytes > 40 || nentries < 0 || nentries as usize > self.limits.max_len {
            return Err(Error::corrupt(keys, "dict keys header"));
        }
        let n = nentries as usize;
        let entries_at = keys + l.dictkeys_indices as u64 + (1u64 << log2_index_bytes);
        // kind 0 (general) entries carry a hash; unicode and split ones do not.
        let (size, key_off) = if kind == 0 { (l.dict_key_entry_size, 8) } else { (l.dict_unicode_entry_size, 0) };
        if n == 0 {
            return Ok(vec![]);
        }
        let raw = self.read(entries_at, size * n)?;
        Ok((0..n).map(|i| (le_u64(&raw, i * size + key_off), le_u64(&raw, i * size + key_off + 8))).collect())
    }

    fn set_entries(&mut self, addr: u64) -> Result<Vec<u64>> {
        Ok(self.set_entries_from(addr, 0)?.into_iter().map(|(_, k)| k).collect())
    }

    /// (table position, key) of a set's entries from table position `from` on.
    fn set_entries_from(&mut self, addr: u64, from: usize) -> Result<Vec<(usize, u64)>> {
        let l = self.layout();
        let raw = self.read(addr, l.set_table + 8)?;
        let mask = le_i64(&raw, l.set_mask);
        let table = le_u64(&raw, l.set_table);
        if mask < 0 || mask as usize >= self.limits.max_len * 2 + 8 {
            return Err(Error::corrupt(addr, "set mask"));
        }
        let n = mask as usize + 1;
        let raw = self.read(table, l.set_entry_size * n)?;
        let dummy = self.set_dummy()?;
        Ok((from..n).map(|i| (i, le_u64(&raw, i * l.set_entry_size))).filter(|&(_, k)| k != 0 && k != dummy).collect())
    }

    fn set_dummy(&mut self) -> Result<u64> {
        Ok(self.py.symbols.set_dummy)
    }

    fn decode_type(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let raw = self.read(addr, l.type_mro + 8)?;
        let flags = le_u64(&raw, l.type_flags);
        let tp_name = self.c_string(le_u64(&raw, l.type_name), 512)?;
        let builtin = self.py.symbols.types.get(&addr).map(|b| format!("{b:?}"));
        let (name, qualname, module, dict_names) = if flags & TPFLAGS_HEAPTYPE != 0 {
            let ht = self.read(addr + l.heaptype_name as u64, 8 * 6)?;
            let base = l.heaptype_name;
            let name = self.read_str(le_u64(&ht, 0))?.as_text().into_owned();
            let qualname = self.read_str(le_u64(&ht, l.heaptype_qualname - base))?.as_text().into_owned();
            let dict = le_u64(&raw, l.type_dict);
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
        let mro_addr = le_u64(&raw, l.type_mro);
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
            self.object(le_u64(&raw, l.type_base)).into_iter().collect()
        };
        let dict = if flags & TPFLAGS_HEAPTYPE != 0 && self.limits.deep && self.limits.module_dicts.contains(&module) {
            self.object(le_u64(&raw, l.type_dict))
        } else {
            None
        };
        let meta_addr = self.ptr(addr + l.object_type as u64)?;
        let metaclass = self.object(meta_addr);
        Ok(Value::Type(TypeInfo { name, qualname, module, flags, builtin, mro, bases, dict_names, dict, metaclass }))
    }

    fn decode_module(&mut self, addr: u64) -> Result<Value> {
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

    /// An object the shim reduced (pickle protocol): the tuple's parts become references.
    fn decode_reduce(&mut self, addr: u64, tuple: u64) -> Result<Value> {
        let l = self.layout();
        if !self.is_exact(tuple, BuiltinType::Tuple)? || self.len_of(tuple)? != 5 {
            return Err(Error::corrupt(addr, "reduce result is not a 5-tuple"));
        }
        let raw = self.read(tuple + l.tuple_items as u64, 40)?;
        let part = |me: &mut Self, i: usize| me.object(le_u64(&raw, 8 * i)).filter(|&id| me.graph.get(id).addr != me.py.symbols.none);
        let (Some(callable), Some(args)) = (part(self, 0), part(self, 1)) else {
            return Err(Error::corrupt(addr, "reduce result without callable and arguments"));
        };
        Ok(Value::Reduce { callable, args, state: part(self, 2), listitems: part(self, 3), dictitems: part(self, 4) })
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

    /// Entries of an imported module that a program may have rebound: plain values, and
    /// functions or classes defined in `__main__` (monkey patches); with `containers`, also
    /// lists, dicts, sets and tuples; and random generators' state. Other values are what
    /// a fresh import gives back.
    fn module_patches(&mut self, module: &str, dict: u64, containers: bool) -> Result<Vec<(String, ObjId)>> {
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
                Some(BuiltinType::Int | BuiltinType::Float | BuiltinType::Str | BuiltinType::Bytes | BuiltinType::Bool | BuiltinType::NoneType) => true,
                Some(BuiltinType::List | BuiltinType::Dict | BuiltinType::Set | BuiltinType::Tuple | BuiltinType::FrozenSet | BuiltinType::ByteArray) => containers,
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

    fn decode_function(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let raw = self.read(addr, l.function_annotations + 8)?;
        let o = |me: &mut Self, off: usize| me.object(le_u64(&raw, off));
        let (Some(code), Some(name), Some(qualname)) = (o(self, l.function_code), o(self, l.function_name), o(self, l.function_qualname)) else {
            return Ok(Value::Opaque);
        };
        let module_addr = le_u64(&raw, l.function_module);
        let module_name = if module_addr != 0 && self.is_exact(module_addr, BuiltinType::Str)? {
            Some(self.read_str(module_addr)?.as_text().into_owned())
        } else {
            None
        };
        let globals_addr = le_u64(&raw, l.function_globals);
        let mut globals_module = self.globals_name(globals_addr)?;
        // A namespace that is no imported module's (namedtuple's `__new__`, exec'd code)
        // travels by value, like `__main__`'s.
        if self.limits.deep && globals_addr != 0 {
            let is_module_dict = match &globals_module {
                Some(m) => self.module_dict_address(m)? == Some(globals_addr),
                None => false,
            };
            if !is_module_dict {
                globals_module = None;
            }
        }
        let carry_globals = match &globals_module {
            Some(m) => self.limits.module_dicts.contains(m),
            None => self.limits.deep,
        };
        let globals = if carry_globals && globals_addr != 0 { o(self, l.function_globals) } else { None };
        Ok(Value::Function {
            code,
            name,
            qualname,
            module_name,
            globals_module,
            globals,
            defaults: o(self, l.function_defaults),
            kwdefaults: o(self, l.function_kwdefaults),
            closure: o(self, l.function_closure),
            dict: if self.limits.deep { o(self, l.function_dict) } else { None },
            annotations: None,
        })
    }

    fn decode_generator(&mut self, addr: u64, kind: BuiltinType) -> Result<Value> {
        let l = self.layout();
        let raw = self.read(addr, l.gen_iframe)?;
        let state = raw[l.gen_frame_state] as i8 as i32;
        let name = self.object(le_u64(&raw, l.gen_name));
        let qualname = self.object(le_u64(&raw, l.gen_qualname));
        let exc_state = self.object(le_u64(&raw, l.gen_exc_state + l.err_stack_item_exc_value));
        let kind = match kind {
            BuiltinType::Coroutine => "coroutine",
            BuiltinType::AsyncGenerator => "async_generator",
            _ => "generator",
        }
        .to_string();
        // Executing frames are read from the thread's stack; finished ones have none.
        let frame = if state < l.frame_executing {
            Some(Box::new(self.read_frame(addr + l.gen_iframe as u64, true)?))
        } else {
            None
        };
        let phase = if state == l.frame_created {
            "CREATED"
        } else if state < l.frame_executing {
            "SUSPENDED"
        } else if state == l.frame_executing {
            "RUNNING"
        } else {
            "CLOSED"
        };
        let prefix = if kind == "coroutine" { "CORO" } else if kind == "async_generator" { "AGEN" } else { "GEN" };
        let python_state = format!("{prefix}_{phase}");
        match (name, qualname) {
            (Some(name), Some(qualname)) => Ok(Value::Generator { kind, name, qualname, state, python_state, frame, exc_state }),
            _ => Ok(Value::Opaque),
        }
    }

    /// A code object, with its bytecode deoptimized back to `co_code`.
    pub fn read_code(&mut self, addr: u64) -> Result<CodeInfo> {
        let l = self.layout();
        let raw = self.read(addr, l.code_code_adaptive)?;
        let nunits = le_i64(&raw, l.var_object_size);
        if nunits < 0 || nunits as usize > self.limits.max_len {
            return Err(Error::corrupt(addr, "code size"));
        }
        let adaptive = self.read(addr + l.code_code_adaptive as u64, 2 * nunits as usize)?;
        let table = crate::opcodes::table_for(self.py.version.major, self.py.version.minor)
            .ok_or_else(|| Error::Bytecode(format!("no opcode table for {}", self.py.version)))?;
        let code = crate::bytecode::deoptimize(&adaptive, table);
        let s = |me: &mut Self, off: usize| -> Result<String> { Ok(me.read_str(le_u64(&raw, off))?.as_text().into_owned()) };
        let strs = |me: &mut Self, off: usize| -> Result<Vec<String>> {
            let t = le_u64(&raw, off);
            let n = me.len_of(t)?;
            let items = me.read(t + l.tuple_items as u64, 8 * n)?;
            (0..n).map(|i| Ok(me.read_str(le_u64(&items, 8 * i))?.as_text().into_owned())).collect()
        };
        let bytes = |me: &mut Self, off: usize| -> Result<Vec<u8>> {
            let b = le_u64(&raw, off);
            let n = me.len_of(b)?;
            me.read(b + l.bytes_data as u64, n)
        };
        let consts_addr = le_u64(&raw, l.code_consts);
        let nconsts = self.len_of(consts_addr)?;
        let consts = self.pointer_array(consts_addr + l.tuple_items as u64, nconsts)?;
        Ok(CodeInfo {
            name: s(self, l.code_name)?,
            qualname: s(self, l.code_qualname)?,
            filename: s(self, l.code_filename)?,
            first_line: le_i32(&raw, l.code_firstlineno),
            flags: le_u32(&raw, l.code_flags),
            argcount: le_u32(&raw, l.code_argcount),
            posonlyargcount: le_u32(&raw, l.code_posonlyargcount),
            kwonlyargcount: le_u32(&raw, l.code_kwonlyargcount),
            stacksize: le_u32(&raw, l.code_stacksize),
            nlocals: le_u32(&raw, l.code_nlocals),
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
        let code_addr = self.ptr(frame + self.layout().frame_executable as u64)?;
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
        let l = self.layout();
        let Some((code_addr, code_id)) = self.frame_code(frame)? else {
            return Err(Error::corrupt(frame, "frame whose executable is not a code object"));
        };
        let Value::Code(code) = &self.graph.get(code_id).value else { return Err(Error::corrupt(code_addr, "code")) };
        let nlocalsplus = code.localsplus_names.len();
        let stacksize = code.stacksize as usize;
        let (code_bytes, linetable, first_line, exc_table) = (code.code.clone(), code.linetable.clone(), code.first_line, code.exceptiontable.clone());
        let hdr = self.read(frame, l.frame_localsplus)?;
        let owner = hdr[l.frame_owner] as i8 as i32;
        let instr = if l.has(l.frame_instr_ptr) { le_u64(&hdr, l.frame_instr_ptr) } else { le_u64(&hdr, l.frame_prev_instr) };
        let code_start = code_addr + l.code_code_adaptive as u64;
        let lasti = (instr as i64 - code_start as i64) / 2;
        let nunits = code_bytes.len() as i64 / 2;
        if lasti < -1 || lasti > nunits {
            return Err(Error::corrupt(frame, format!("instruction pointer outside its code ({lasti} of {nunits})")));
        }
        let table = crate::opcodes::table_for(self.py.version.major, self.py.version.minor)
            .ok_or_else(|| Error::Bytecode("no opcode table".into()))?;
        let instrs = crate::bytecode::instructions(&code_bytes, table);
        let instr_start = instrs
            .iter()
            .find(|i| (i.offset as i64) <= lasti && lasti < (i.offset + i.size) as i64)
            .map(|i| i.offset)
            .unwrap_or(0);
        let line = if lasti < 0 { Some(first_line) } else { crate::bytecode::line_for_offset(&linetable, first_line, lasti as u32) };
        let slots = self.read(frame + l.frame_localsplus as u64, 8 * (nlocalsplus + stacksize))?;
        let localsplus: Vec<Option<ObjId>> = (0..nlocalsplus).map(|i| self.object(le_u64(&slots, 8 * i))).collect();
        let stacktop = le_i32(&hdr, l.frame_stacktop);
        let (depth, stack_from) = if stacktop >= nlocalsplus as i32 && stacktop <= (nlocalsplus + stacksize) as i32 && (suspended || stacktop > 0) {
            (stacktop as usize - nlocalsplus, StackSource::Stacktop)
        } else if lasti >= 0 {
            let entries = crate::bytecode::parse_exception_table(&exc_table);
            match crate::bytecode::stack_depths(&code_bytes, &entries, table) {
                Ok(depths) => match depths.get(instr_start as usize).copied().flatten() {
                    Some(d) if (d as usize) <= stacksize => (d as usize, StackSource::Static),
                    _ => (0, StackSource::Unknown),
                },
                Err(_) => (0, StackSource::Unknown),
            }
        } else {
            (0, StackSource::Stacktop)
        };
        // 3.11's CALL_FUNCTION_EX pops its argument tuple (and kwargs dict) before making
        // the call: during the call those slots hold stale pointers (a temporary such as
        // `f(*range(3))` is already freed). They are not the frame's: leave them empty.
        let stale_top = match instrs.iter().find(|i| i.offset == instr_start) {
            Some(ins) if stack_from == StackSource::Static && self.py.version.minor == 11 && table.info(ins.opcode).name == "CALL_FUNCTION_EX" => 1 + (ins.arg & 1) as usize,
            _ => 0,
        };
        let stack = (0..depth)
            .map(|i| if i + stale_top >= depth { None } else { self.object(le_u64(&slots, 8 * (nlocalsplus + i))) })
            .collect();
        let globals_addr = le_u64(&hdr, l.frame_globals);
        let locals_addr = le_u64(&hdr, l.frame_locals);
        // Module and class bodies keep their names in f_locals: always read that mapping.
        let locals_mapping = self.object(locals_addr);
        let globals = if locals_addr == globals_addr || self.globals_wanted(globals_addr)? { self.object(globals_addr) } else { None };
        let function = self.object(le_u64(&hdr, l.frame_funcobj));
        let generator = if owner == l.frame_owned_by_generator { self.object(frame - l.gen_iframe as u64) } else { None };
        let through_init_cleanup = self.init_cleanup_inner.contains(&frame);
        Ok(FrameInfo { addr: frame, code: code_id, owner, lasti, instr_start, line, localsplus, stack, stack_from, globals, locals_mapping, function, generator, through_init_cleanup })
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
        let raw = self.read(f.addr + l.frame_localsplus as u64 + 8 * n as u64, 8 * depth.max(1))?;
        f.stack = (0..depth).map(|i| self.object(le_u64(&raw, 8 * i))).collect();
        f.stack_from = StackSource::Static;
        Ok(())
    }

    /// Whether a frame's globals dict belongs to a module whose dict we expand.
    fn globals_wanted(&mut self, globals: u64) -> Result<bool> {
        if globals == 0 {
            return Ok(false);
        }
        if self.graph.id_of(globals).is_some() {
            return Ok(true);
        }
        Ok(self.globals_name(globals)?.is_some_and(|name| self.limits.module_dicts.contains(&name)))
    }

    /// The namespace dict of the module `sys.modules[name]`.
    /// The program's environment as `os.environ` holds it (what it set or removed since
    /// it started included); None when `os` is not loaded or looks unusual.
    pub fn current_environ(&mut self) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>> {
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
    fn globals_name(&mut self, globals: u64) -> Result<Option<String>> {
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
