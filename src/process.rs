//! Finding the interpreter inside a process: which binary carries `_PyRuntime`, which
//! CPython version it is, which layout table applies, and where the builtin types live.

use std::collections::HashMap;
use std::path::PathBuf;

use ptrace_tools::elf::{dynamic_symbol_address_in_process as symbol_address_in_process, ElfFile};
use ptrace_tools::maps::{read_maps, MapRegion};
use ptrace_tools::memory::MemoryReader;

use crate::error::{Error, Result};
use crate::layouts::{self, Layout};

/// `PY_VERSION_HEX` split into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PyVersion {
    pub major: u8,
    pub minor: u8,
    pub micro: u8,
    pub level: u8,
    pub serial: u8,
}

impl PyVersion {
    pub fn from_hex(hex: u64) -> Self {
        PyVersion {
            major: ((hex >> 24) & 0xff) as u8,
            minor: ((hex >> 16) & 0xff) as u8,
            micro: ((hex >> 8) & 0xff) as u8,
            level: ((hex >> 4) & 0xf) as u8,
            serial: (hex & 0xf) as u8,
        }
    }
}

impl std::fmt::Display for PyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)?;
        match self.level {
            0xa => write!(f, "a{}", self.serial),
            0xb => write!(f, "b{}", self.serial),
            0xc => write!(f, "rc{}", self.serial),
            _ => Ok(()),
        }
    }
}

/// What a builtin type address stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinType {
    NoneType,
    Bool,
    Int,
    Float,
    Complex,
    Str,
    Bytes,
    ByteArray,
    Tuple,
    List,
    Dict,
    /// 3.15's builtin `frozendict` (a dict's layout, plus its hash).
    FrozenDict,
    Set,
    FrozenSet,
    Cell,
    Function,
    Code,
    Module,
    Type,
    Method,
    CFunction,
    Generator,
    Coroutine,
    AsyncGenerator,
    Range,
    RangeIter,
    LongRangeIter,
    ListIter,
    TupleIter,
    Enumerate,
    Zip,
    DictKeyIter,
    DictValueIter,
    DictItemIter,
    MemberDescr,
    Ellipsis,
    NotImplemented,
    Slice,
    Object,
    Frame,
    Property,
    StaticMethod,
    ClassMethod,
    Map,
    Filter,
    Reversed,
    StrIter,
    ListRevIter,
    SetIter,
    DictKeys,
    DictValues,
    DictItems,
    BaseException,
    Descriptor,
}

/// Static types that are not exported, recognised by their `tp_name` (fixed in C).
pub const TYPES_BY_NAME: &[(&str, BuiltinType)] = &[("str_ascii_iterator", BuiltinType::StrIter)];

/// Exported symbols (the dynamic table suffices: no `.symtab` parse on the hot path).
const TYPE_SYMBOLS: &[(&str, BuiltinType)] = &[
    ("_PyNone_Type", BuiltinType::NoneType),
    ("PyBool_Type", BuiltinType::Bool),
    ("PyLong_Type", BuiltinType::Int),
    ("PyFloat_Type", BuiltinType::Float),
    ("PyComplex_Type", BuiltinType::Complex),
    ("PyUnicode_Type", BuiltinType::Str),
    ("PyBytes_Type", BuiltinType::Bytes),
    ("PyByteArray_Type", BuiltinType::ByteArray),
    ("PyTuple_Type", BuiltinType::Tuple),
    ("PyList_Type", BuiltinType::List),
    ("PyDict_Type", BuiltinType::Dict),
    ("PyFrozenDict_Type", BuiltinType::FrozenDict),
    ("PySet_Type", BuiltinType::Set),
    ("PyFrozenSet_Type", BuiltinType::FrozenSet),
    ("PyCell_Type", BuiltinType::Cell),
    ("PyFunction_Type", BuiltinType::Function),
    ("PyCode_Type", BuiltinType::Code),
    ("PyModule_Type", BuiltinType::Module),
    ("PyType_Type", BuiltinType::Type),
    ("PyMethod_Type", BuiltinType::Method),
    ("PyCFunction_Type", BuiltinType::CFunction),
    ("PyCMethod_Type", BuiltinType::CFunction),
    ("PyGen_Type", BuiltinType::Generator),
    ("PyCoro_Type", BuiltinType::Coroutine),
    ("PyAsyncGen_Type", BuiltinType::AsyncGenerator),
    ("PyRange_Type", BuiltinType::Range),
    ("PyRangeIter_Type", BuiltinType::RangeIter),
    ("PyLongRangeIter_Type", BuiltinType::LongRangeIter),
    ("PyListIter_Type", BuiltinType::ListIter),
    ("PyListRevIter_Type", BuiltinType::ListRevIter),
    ("PyTupleIter_Type", BuiltinType::TupleIter),
    ("PyEnum_Type", BuiltinType::Enumerate),
    ("PyZip_Type", BuiltinType::Zip),
    ("PyMap_Type", BuiltinType::Map),
    ("PyFilter_Type", BuiltinType::Filter),
    ("PyReversed_Type", BuiltinType::Reversed),
    ("PyUnicodeIter_Type", BuiltinType::StrIter),
    // Iterators over bytes and bytearray: the same (index, sequence) struct as a str
    // iterator's, rebuilt the same way (iter(seq), advanced).
    ("PyBytesIter_Type", BuiltinType::StrIter),
    ("PyByteArrayIter_Type", BuiltinType::StrIter),
    ("PySetIter_Type", BuiltinType::SetIter),
    ("PyDictIterKey_Type", BuiltinType::DictKeyIter),
    ("PyDictIterValue_Type", BuiltinType::DictValueIter),
    ("PyDictIterItem_Type", BuiltinType::DictItemIter),
    ("PyDictKeys_Type", BuiltinType::DictKeys),
    ("PyDictValues_Type", BuiltinType::DictValues),
    ("PyDictItems_Type", BuiltinType::DictItems),
    ("PyMemberDescr_Type", BuiltinType::MemberDescr),
    ("PyGetSetDescr_Type", BuiltinType::Descriptor),
    ("PyMethodDescr_Type", BuiltinType::Descriptor),
    ("PyWrapperDescr_Type", BuiltinType::Descriptor),
    ("PyClassMethodDescr_Type", BuiltinType::Descriptor),
    ("PyEllipsis_Type", BuiltinType::Ellipsis),
    ("_PyNotImplemented_Type", BuiltinType::NotImplemented),
    ("PySlice_Type", BuiltinType::Slice),
    ("PyBaseObject_Type", BuiltinType::Object),
    ("PyFrame_Type", BuiltinType::Frame),
    ("PyProperty_Type", BuiltinType::Property),
    ("PyStaticMethod_Type", BuiltinType::StaticMethod),
    ("PyClassMethod_Type", BuiltinType::ClassMethod),
];

/// Addresses of singletons and builtin types in the target.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    pub types: HashMap<u64, BuiltinType>,
    pub type_addr: HashMap<BuiltinType, u64>,
    pub none: u64,
    pub true_: u64,
    pub false_: u64,
    pub ellipsis: u64,
    pub not_implemented: u64,
    /// `PyExc_BaseException` points at the static type object.
    pub base_exception_type: u64,
    /// The placeholder key of deleted set entries.
    pub set_dummy: u64,
}

/// A CPython process opened for reading.
pub struct PythonProcess {
    pub pid: i32,
    pub version: PyVersion,
    pub layout: &'static Layout,
    pub runtime_addr: u64,
    pub symbols: Symbols,
    pub binary: PathBuf,
    pub maps: Vec<MapRegion>,
}

fn looks_like_python(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libpython3") || name.starts_with("python3") || name == "python"
}

impl PythonProcess {
    /// Locate the interpreter in `pid`. `mem` reads the target (live or a copy).
    pub fn open(pid: i32, mem: &dyn MemoryReader) -> Result<Self> {
        if !ptrace_tools::threads::process_exists(pid) {
            return Err(ptrace_tools::Error::NoSuchProcess { pid }.into());
        }
        let maps = read_maps(pid)?;
        // Candidates: every mapped file that looks like libpython or a python executable,
        // then the main executable (static builds such as Debian's carry _PyRuntime there).
        let mut candidates: Vec<PathBuf> = Vec::new();
        for m in &maps {
            if let Some(p) = &m.path {
                if m.offset == 0 && looks_like_python(p) && !candidates.contains(p) {
                    candidates.push(p.clone());
                }
            }
        }
        if let Ok(exe) = ptrace_tools::threads::exe_path(pid) {
            if !candidates.contains(&exe) {
                candidates.push(exe);
            }
        }
        // Shared builds map both python3.X and libpython3.X: prefer the one defining _PyRuntime.
        candidates.sort_by_key(|p| !p.file_name().and_then(|n| n.to_str()).unwrap_or("").starts_with("libpython"));
        let mut last_err = String::from("no python binary or libpython is mapped");
        for path in candidates {
            let elf = match ElfFile::open(&path) {
                Ok(e) => e,
                Err(e) => {
                    last_err = e.to_string();
                    continue;
                }
            };
            let Some(runtime_addr) = symbol_address_in_process(&maps, &elf, "_PyRuntime") else {
                last_err = format!("{} has no _PyRuntime symbol", path.display());
                continue;
            };
            let version = match symbol_address_in_process(&maps, &elf, "Py_Version") {
                Some(a) => PyVersion::from_hex(mem.read_u64(a)? & 0xffff_ffff),
                None => {
                    // Before 3.11 there is no Py_Version: take the version from the file name.
                    let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let version = file
                        .trim_start_matches("lib")
                        .trim_start_matches("python")
                        .split(".so")
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .to_string();
                    let version = if version.is_empty() { "older than 3.11".to_string() } else { version };
                    return Err(Error::UnsupportedVersion { pid, version, supported: layouts::supported_versions() });
                }
            };
            let version_text = version.to_string();
            let layout = layouts::for_version(version.major, version.minor).ok_or_else(|| Error::UnsupportedVersion {
                pid,
                version: version_text.clone(),
                supported: layouts::supported_versions(),
            })?;
            if let Some(size) = layout.debug_offsets_size {
                let table = mem.read_vec(runtime_addr, size)?;
                if &table[..8] != b"xdebugpy" {
                    return Err(Error::LayoutMismatch {
                        pid,
                        version: version_text,
                        detail: "_PyRuntime does not start with the _Py_DebugOffsets cookie".into(),
                    });
                }
                // Before the offsets: a free-threaded build lays out objects and frames
                // differently from the table even where the reported offsets agree.
                if layout.free_threaded(&table) {
                    return Err(Error::FreeThreaded { pid, version: version_text });
                }
                layout.check_debug_offsets(&table).map_err(|m| Error::LayoutMismatch {
                    pid,
                    version: version_text.clone(),
                    detail: m.to_string(),
                })?;
            }
            let symbols = read_symbols(&maps, &elf, mem)?;
            return Ok(PythonProcess { pid, version, layout, runtime_addr, symbols, binary: path, maps });
        }
        Err(Error::NotPython { pid, detail: last_err })
    }
}

impl PythonProcess {
    /// Refuse a version whose frames can be read but not rebuilt (teleport, attach).
    pub fn require_movable(&self) -> Result<()> {
        if self.layout.movable {
            return Ok(());
        }
        Err(Error::ReadOnlyVersion { pid: self.pid, version: self.version.to_string(), movable: layouts::movable_versions() })
    }

    /// A process described by hand, for decoding memory built by a test (`FakeMemory`):
    /// no pid, binary or maps; the version is the layout's.
    pub fn for_test(layout: &'static Layout, symbols: Symbols) -> Self {
        let (major, minor, micro) = layout.version;
        PythonProcess {
            pid: 0,
            version: PyVersion { major, minor, micro, level: 0xf, serial: 0 },
            layout,
            runtime_addr: 0,
            symbols,
            binary: PathBuf::new(),
            maps: vec![],
        }
    }
}

fn read_symbols(maps: &[MapRegion], elf: &ElfFile, mem: &dyn MemoryReader) -> Result<Symbols> {
    let mut s = Symbols::default();
    for &(name, kind) in TYPE_SYMBOLS {
        if let Some(addr) = symbol_address_in_process(maps, elf, name) {
            s.types.insert(addr, kind);
            s.type_addr.entry(kind).or_insert(addr);
        }
    }
    let sym = |n: &str| symbol_address_in_process(maps, elf, n).unwrap_or(0);
    s.none = sym("_Py_NoneStruct");
    s.true_ = sym("_Py_TrueStruct");
    s.false_ = sym("_Py_FalseStruct");
    s.ellipsis = sym("_Py_EllipsisObject");
    s.not_implemented = sym("_Py_NotImplementedStruct");
    let dummy_ptr = sym("_PySet_Dummy");
    if dummy_ptr != 0 {
        s.set_dummy = mem.read_u64(dummy_ptr)?;
    }
    let exc_ptr = sym("PyExc_BaseException");
    if exc_ptr != 0 {
        s.base_exception_type = mem.read_u64(exc_ptr)?;
        s.types.insert(s.base_exception_type, BuiltinType::BaseException);
    }
    Ok(s)
}
