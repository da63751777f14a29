//! The snapshot's data model: everything a snapshot holds, as serde types. The
//! decoder (`crate::decode`) builds these from memory, the supervisor plans resumes into
//! them, the restore engine (`python_shim`) reads them back. Nothing here reads memory.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::process::PyVersion;

pub type ObjId = u32;

/// A Python `str`: valid Unicode, or code points including lone surrogates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PyStr {
    Text(String),
    CodePoints(Vec<u32>),
}

impl PyStr {
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            PyStr::Text(s) => std::borrow::Cow::Borrowed(s),
            PyStr::CodePoints(cps) => std::borrow::Cow::Owned(cps.iter().map(|&c| char::from_u32(c).unwrap_or('\u{fffd}')).collect()),
        }
    }
    pub fn code_points(&self) -> Vec<u32> {
        match self {
            PyStr::Text(s) => s.chars().map(|c| c as u32).collect(),
            PyStr::CodePoints(c) => c.clone(),
        }
    }
}

/// What a type node says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeInfo {
    pub name: String,
    pub qualname: String,
    pub module: String,
    pub flags: u64,
    pub builtin: Option<String>,
    /// Method resolution order, this type first.
    pub mro: Vec<ObjId>,
    pub bases: Vec<ObjId>,
    /// Names defined in the type's own dict (heap types), without decoding the values.
    pub dict_names: Vec<String>,
    /// The full dict, decoded only for classes carried by value.
    pub dict: Option<ObjId>,
    pub metaclass: Option<ObjId>,
    /// A class of an installed package found by name: the state its dict holds (name,
    /// value) — plain values, containers and instances such as a progress bar's list of
    /// bars, its lock, its monitor thread — set again on the new process's class.
    pub patches: Vec<(String, ObjId)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeInfo {
    pub name: String,
    pub qualname: String,
    pub filename: String,
    pub first_line: i32,
    pub flags: u32,
    pub argcount: u32,
    pub posonlyargcount: u32,
    pub kwonlyargcount: u32,
    pub stacksize: u32,
    pub nlocals: u32,
    pub localsplus_names: Vec<String>,
    #[serde(with = "serde_bytes")]
    pub localsplus_kinds: Vec<u8>,
    /// Deoptimized bytecode, equal to `code.co_code`.
    #[serde(with = "serde_bytes")]
    pub code: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub linetable: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub exceptiontable: Vec<u8>,
    pub consts: Vec<ObjId>,
    pub names: Vec<String>,
}

/// A frame read from memory: a thread's frame or a suspended generator's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameInfo {
    pub addr: u64,
    pub code: ObjId,
    pub owner: i32,
    /// `f_lasti` in code units (-1: not started).
    pub lasti: i64,
    /// Start (code units) of the instruction containing `lasti`.
    pub instr_start: u32,
    pub line: Option<i32>,
    /// One entry per `localsplus` slot, in order; `None` where the slot is NULL.
    pub localsplus: Vec<Option<ObjId>>,
    pub stack: Vec<Option<ObjId>>,
    pub stack_from: StackSource,
    pub globals: Option<ObjId>,
    pub locals_mapping: Option<ObjId>,
    pub function: Option<ObjId>,
    /// The generator or coroutine that owns this frame.
    pub generator: Option<ObjId>,
    /// An `__init__` entered by a specialized class call (3.13): its caller receives the
    /// instance (`self`) when it returns; the shim frame between them is left out.
    pub through_init_cleanup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StackSource {
    /// The frame's saved `stacktop`.
    Stacktop,
    /// Static stack-depth analysis of the bytecode (the frame is executing a C call).
    Static,
    /// The depth could not be established; the stack is left empty.
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    None,
    Ellipsis,
    NotImplemented,
    Bool(bool),
    /// Sign and base-2**30 digits, least significant first.
    Int {
        negative: bool,
        digits: Vec<u32>,
    },
    Float(f64),
    Complex(f64, f64),
    Str(PyStr),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    ByteArray(#[serde(with = "serde_bytes")] Vec<u8>),
    Tuple(Vec<ObjId>),
    List(Vec<ObjId>),
    Dict(Vec<(ObjId, ObjId)>),
    Set(Vec<ObjId>),
    FrozenSet(Vec<ObjId>),
    Cell(Option<ObjId>),
    /// `spec`: has a `__spec__`; `origin`/`has_location` are the spec's (for repr).
    /// `patches`: names whose value may have been set at run time (scalars, and
    /// functions or classes of `__main__`), re-applied after the import on restore.
    Module {
        name: String,
        file: Option<String>,
        spec: bool,
        origin: Option<String>,
        has_location: bool,
        dict: Option<ObjId>,
        patches: Vec<(String, ObjId)>,
    },
    Type(TypeInfo),
    Function {
        code: ObjId,
        name: ObjId,
        qualname: ObjId,
        module_name: Option<String>,
        /// `__name__` of the module whose namespace is the function's globals (differs
        /// from `module_name` for wrappers made by `functools.wraps` in another module).
        globals_module: Option<String>,
        globals: Option<ObjId>,
        defaults: Option<ObjId>,
        kwdefaults: Option<ObjId>,
        closure: Option<ObjId>,
        dict: Option<ObjId>,
        annotations: Option<ObjId>,
    },
    Code(Box<CodeInfo>),
    Method {
        func: ObjId,
        self_: ObjId,
    },
    BuiltinFunction {
        name: String,
        self_: Option<ObjId>,
        module: Option<String>,
    },
    /// `state` is the interpreter's raw frame state; `python_state` what
    /// `inspect.getgeneratorstate` says (GEN_CREATED, GEN_SUSPENDED, GEN_RUNNING, GEN_CLOSED;
    /// CORO_* for coroutines).
    Generator {
        kind: String,
        name: ObjId,
        qualname: ObjId,
        state: i32,
        python_state: String,
        frame: Option<Box<FrameInfo>>,
        exc_state: Option<ObjId>,
    },
    Range {
        start: ObjId,
        stop: ObjId,
        step: ObjId,
    },
    /// An object made again by calling the builtin type `type_name` with `args` (NULL
    /// slots as None), then filling its `__dict__`: staticmethod, classmethod, property,
    /// slice.
    Rebuilt {
        type_name: String,
        args: Vec<Option<ObjId>>,
        dict: Option<ObjId>,
    },
    RangeIter {
        start: i64,
        step: i64,
        len: i64,
        index: i64,
    },
    SeqIter {
        seq: Option<ObjId>,
        index: i64,
    },
    Enumerate {
        iter: ObjId,
        index: i64,
        long_index: Option<ObjId>,
    },
    Zip {
        iters: ObjId,
        strict: bool,
    },
    DictIter {
        dict: Option<ObjId>,
        pos: i64,
        len: i64,
    },
    Exception {
        args: Option<ObjId>,
        dict: Option<ObjId>,
        context: Option<ObjId>,
        cause: Option<ObjId>,
        suppress_context: bool,
        notes: Option<ObjId>,
    },
    /// An instance of a Python class: its `__dict__`, its `__slots__`, and the builtin value
    /// underneath when it subclasses one (`class N(int)`).
    Instance {
        dict: Option<ObjId>,
        slots: Vec<(String, Option<ObjId>)>,
        #[serde(deserialize_with = "bounded_base")]
        base: Option<Box<Value>>,
    },
    /// A descriptor a type owns (`str.upper`, a class's `__dict__` or slot): found again
    /// as `vars(owner)[name]`.
    Descriptor {
        owner: ObjId,
        name: String,
    },
    /// Rebuilt as pickle does: `callable(*args)`, then state, list items, dict items.
    Reduce {
        callable: ObjId,
        args: ObjId,
        state: Option<ObjId>,
        listitems: Option<ObjId>,
        dictitems: Option<ObjId>,
    },
    /// One of the standard streams, by its name in `sys`.
    Stdio(String),
    /// `module.name`: an object an installed module holds as a global (a sentinel, a
    /// logger, a default instance), taken from the module in the new process so that
    /// identity checks against it still hold. `state`, when set, is given to its
    /// `__setstate__` there (a `random.Random`: the module's generator goes on where it was).
    Global {
        module: String,
        name: String,
        state: Option<ObjId>,
    },
    /// A bare `object()`.
    Object,
    /// Known only by type and address.
    Opaque,
    /// Not read: a limit was reached.
    Unread(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Object {
    pub addr: u64,
    pub type_id: Option<ObjId>,
    pub value: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ObjectGraph {
    pub objects: Vec<Object>,
    #[serde(skip)]
    pub(crate) index: FxHashMap<u64, ObjId>,
}

impl ObjectGraph {
    pub fn get(&self, id: ObjId) -> &Object {
        &self.objects[id as usize]
    }
    pub fn id_of(&self, addr: u64) -> Option<ObjId> {
        self.index.get(&addr).copied()
    }
    pub fn rebuild_index(&mut self) {
        self.index = self.objects.iter().enumerate().map(|(i, o)| (o.addr, i as ObjId)).collect();
    }
    pub fn type_info(&self, id: ObjId) -> Option<&TypeInfo> {
        let t = self.get(id).type_id?;
        match &self.get(t).value {
            Value::Type(ti) => Some(ti),
            _ => None,
        }
    }
    pub fn str_of(&self, id: ObjId) -> Option<std::borrow::Cow<'_, str>> {
        match &self.get(id).value {
            Value::Str(s) => Some(s.as_text()),
            _ => None,
        }
    }
}

/// One Python thread as read from memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub tstate: u64,
    pub thread_id: u64,
    pub native_thread_id: u64,
    pub name: Option<String>,
    pub is_main: bool,
    /// Innermost first.
    pub frames: Vec<FrameInfo>,
    /// The exception being handled in this thread (`sys.exc_info()`), if any.
    pub handled_exception: Option<ObjId>,
    /// Its `threading.Thread` object (from `threading._active`), when it has one.
    pub thread_object: Option<ObjId>,
    /// `threading.RLock`s this thread holds, with their recursion counts: rebuilt free and
    /// taken again by this thread (`count` times) before it runs.
    pub held_rlocks: Vec<(ObjId, u32)>,
}

/// A thread of the program besides [`Snapshot::thread`], with how its frames resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherThread {
    pub thread: ThreadInfo,
    /// One per frame of `thread`, innermost first.
    pub resume: Vec<FrameResume>,
}

/// How the restore engine re-enters one frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameResume {
    /// Code unit (in the original code) of the instruction that runs next.
    pub resume: u32,
    /// How many value-stack entries stay below the value the frame receives.
    pub keep: u32,
    /// The frame waits in FOR_ITER: if its iterator is exhausted instead of yielding, it
    /// re-enters at this FOR_ITER with the iterator on the stack.
    pub for_iter: Option<u32>,
    /// The exception `sys.exc_info()` reports while this frame runs.
    pub exc_value: Option<ObjId>,
    /// The frame called a class and the inner frame is its `__init__` (reached through
    /// `type.__call__` in C): the call's result is this instance, not `__init__`'s None.
    pub init_self: Option<ObjId>,
    /// Whether the frame receives a value (its callee's result) when resumed. False for
    /// a frame stopped between instructions (attach): it resumes with its stack as is.
    pub push: bool,
}

/// What the new process needs besides the frames and objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub executable: String,
    pub argv: Vec<String>,
    pub sys_path: Vec<String>,
    pub cwd: String,
    /// `sys.getrecursionlimit()` of the original.
    pub recursion_limit: i32,
    /// Input `sys.stdin` had read ahead but not handed to the program.
    #[serde(with = "serde_bytes")]
    pub stdin_pending: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub python: PyVersion,
    pub bytecode_magic: [u8; 4],
    pub process: ProcessInfo,
    pub graph: ObjectGraph,
    /// The thread being moved; frames innermost first, pyteleport's own frames removed.
    pub thread: ThreadInfo,
    /// The `__main__` module node.
    pub main_module: Option<ObjId>,
    /// `sys.stdin`/`stdout`/`stderr` rebound to other objects (contextlib.redirect_stdout):
    /// (name, object), set again in the new process.
    pub redirected_streams: Vec<(String, ObjId)>,
    /// Interpreter state kept outside the objects the program references, gathered by
    /// `pyteleport/_reduce_core.py` (`interpreter_extras`) and set again in the new
    /// process: ("decimal_context", tuple), ("signal_handlers", list of (signum, handler)).
    pub interpreter_extras: Vec<(String, ObjId)>,
    /// How each frame of `thread` resumes, innermost first.
    pub resume: Vec<FrameResume>,
    /// Every other Python thread of the program: each runs again in a thread of its own
    /// (the one that `is_main` on the new process's main thread).
    pub other_threads: Vec<OtherThread>,
}

/// How deep `Instance.base` values may nest in a snapshot: a real one is a builtin value
/// under one instance (`class N(int)`), a crafted one could nest until the decoder's
/// recursion overflows the stack.
const MAX_BASE_NESTING: u32 = 16;

thread_local! {
    static BASE_NESTING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn bounded_base<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Box<Value>>, D::Error> {
    let depth = BASE_NESTING.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let result = if depth > MAX_BASE_NESTING {
        Err(serde::de::Error::custom(format!("instance values nest deeper than {MAX_BASE_NESTING} levels")))
    } else {
        <Option<Box<Value>> as serde::Deserialize>::deserialize(deserializer)
    };
    BASE_NESTING.with(|d| d.set(d.get() - 1));
    result
}
