//! Where each thread of a stopped process stands, and whether it can be carried from
//! there: every Python thread moves with the program, each from a moment of its own.
//!
//! While one thread holds the GIL at a known point (the teleporting thread inside the
//! shim, or attach's thread at the pending-work check), no other thread runs Python code,
//! so each other thread is in one of these places:
//!
//! * waiting for the GIL at the eval loop's pending-work check (it gave the GIL up
//!   there): between two instructions, resumable as attach resumes its thread;
//! * blocked in a wait inside a call that can simply be made again (a lock, queue or join
//!   wait, a sleep, `select`), with the GIL released: it resumes by making that call again;
//! * anywhere else (waiting for the GIL after a call into C returned, inside a call that
//!   cannot be made again, running C code): not carriable now. The capture lets the
//!   program run a little (the shim releases the GIL for a moment) and looks again.
//!
//! Which of these it is comes from the thread's registers (the system call it is in) and
//! the return addresses on its native stack (who called `take_gil`), read with the
//! interpreter's own symbols; a stripped interpreter cannot tell, and a thread there is
//! only carried when it has no Python frame at all.

use ptrace_tools::elf::ElfFile;
use ptrace_tools::memory::MemoryReader;

use crate::decode::Decoder;
use crate::error::Result;
use crate::process::PythonProcess;
use crate::resume::{between_resume, redo_resume};
use crate::snapshot::{FrameInfo, ObjectGraph, Value};

/// How a thread is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Between two instructions: it gave the GIL up at the pending-work check.
    BetweenInstructions,
    /// Blocked in a call that is made again in the new process.
    RedoCall,
    /// A thread state with no Python frame (a thread of C code): nothing to carry.
    NoPythonFrame,
}

/// A thread that cannot be carried at this moment: its native id, where its innermost
/// Python frame is, and why.
#[derive(Debug, Clone)]
pub struct NotAtRest {
    pub native_id: i32,
    /// Its `threading.Thread`'s name, where it has one.
    pub name: Option<String>,
    pub place: String,
    pub why: String,
}

impl NotAtRest {
    /// `thread 7058 "pipe-reader"`: how messages name it.
    pub fn who(&self) -> String {
        thread_label(self.native_id, self.name.as_deref())
    }
}

/// How messages name a thread: its native id, and its `threading` name where known.
pub fn thread_label(native_id: i32, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("thread {native_id} {name:?}"),
        None => format!("thread {native_id}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fun {
    TakeGil,
    /// Between `take_gil` and its real caller on 3.13.
    ThreadAttach,
    HandlePending,
    EvalLoop,
    /// Any other caller of `take_gil` (`PyEval_RestoreThread` after a call into C...).
    GilTaker,
}

/// What the interpreter's symbols say about native stacks.
pub struct NativeFunctions {
    ranges: Vec<(Fun, u64, u64)>,
}

impl NativeFunctions {
    /// The interpreter's functions that matter, at their addresses in the process; None
    /// when its binary has no local symbols (`take_gil` is static).
    pub fn locate(py: &PythonProcess) -> Option<NativeFunctions> {
        let elf = ElfFile::open_in_process(py.pid, &py.binary).ok()?;
        let bias = elf.load_bias_in_process(&py.maps)?;
        let mut ranges = Vec::new();
        let named = [
            (Fun::TakeGil, "take_gil"),
            (Fun::ThreadAttach, "_PyThreadState_Attach"),
            (Fun::HandlePending, "_Py_HandlePending"),
            (Fun::EvalLoop, "_PyEval_EvalFrameDefault"),
            (Fun::EvalLoop, "_PyEval_EvalFrameDefault.cold"),
            (Fun::GilTaker, "PyEval_RestoreThread"),
            (Fun::GilTaker, "PyEval_AcquireThread"),
            (Fun::GilTaker, "PyGILState_Ensure"),
            (Fun::GilTaker, "PyEval_AcquireLock"),
        ];
        for (fun, name) in named {
            if let Some(s) = elf.symbol(name).filter(|s| s.size > 0) {
                let start = bias.wrapping_add(s.value);
                ranges.push((fun, start, start + s.size));
            }
        }
        ranges.iter().any(|r| r.0 == Fun::TakeGil).then_some(NativeFunctions { ranges })
    }

    fn function_at(&self, addr: u64) -> Option<Fun> {
        self.ranges.iter().find(|&&(_, a, b)| a <= addr && addr < b).map(|r| r.0)
    }
}

/// Where a thread is natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Native {
    /// Waiting for the GIL, which it gave up at the pending-work check.
    GilAtSafePoint,
    /// Waiting for the GIL to come back from a call into C (or starting up).
    GilAfterCall,
    /// In a system call other than the GIL's wait (the GIL released).
    Blocked,
    /// Running, or in a system call that is no wait.
    Elsewhere,
}

/// Return values of a system call interrupted by the tracer's stop, still to be restarted.
fn interrupted(rax: u64) -> bool {
    matches!(rax as i64, -516..=-512 | -4)
}

/// Whether the call instruction `ret` returns from is a direct `call rel32` into `target`.
fn calls_directly(mem: &dyn MemoryReader, ret: u64, funs: &NativeFunctions, target: Fun) -> bool {
    let mut b = [0u8; 5];
    if mem.read(ret - 5, &mut b).is_err() || b[0] != 0xE8 {
        return false;
    }
    let callee = ret.wrapping_add_signed(i32::from_le_bytes([b[1], b[2], b[3], b[4]]) as i64);
    funs.function_at(callee) == Some(target)
}

/// Whether `ret` follows a call instruction (so it is a return address, not stale data).
fn after_call(mem: &dyn MemoryReader, ret: u64) -> bool {
    let mut b = [0u8; 7];
    if mem.read(ret - 7, &mut b).is_err() {
        return false;
    }
    let modrm_is_call = |m: u8| (m >> 3) & 7 == 2;
    b[2] == 0xE8 // call rel32
        || (b[5] == 0xFF && modrm_is_call(b[6])) // call *%reg
        || (b[4] == 0xFF && modrm_is_call(b[5])) // call *disp8(%reg)
        || (b[1] == 0xFF && modrm_is_call(b[2])) // call *disp32(%reg)
        || (b[0] == 0xFF && modrm_is_call(b[1]))
}

fn native_place(mem: &dyn MemoryReader, funs: &NativeFunctions, regs: &libc::user_regs_struct) -> Native {
    // The return addresses of the interpreter's functions on the stack, innermost first,
    // up to the eval loop.
    let mut seen = Vec::new();
    let mut at = regs.rsp;
    'scan: for _ in 0..16 {
        let mut chunk = vec![0u8; 4096];
        if mem.read(at, &mut chunk).is_err() {
            break;
        }
        for w in chunk.chunks_exact(8) {
            let word = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            if let Some(f) = funs.function_at(word) {
                if after_call(mem, word) {
                    seen.push((f, word));
                    if f == Fun::EvalLoop || seen.len() > 8 {
                        break 'scan;
                    }
                }
            }
        }
        at += 4096;
    }
    if seen.first().map(|s| s.0) == Some(Fun::TakeGil) {
        let mut callers = seen.iter().skip(1).filter(|s| s.0 != Fun::TakeGil && s.0 != Fun::ThreadAttach);
        return match (callers.next(), callers.next()) {
            // The pending-work check of the eval loop itself, between two instructions.
            // The same handler run from C code (a lock's wait interrupted by a signal
            // runs pending work) is no such point: the eval loop's return address must
            // follow a direct call of the handler, not of the C function.
            (Some(&(Fun::HandlePending, _)), Some(&(Fun::EvalLoop, ret))) if calls_directly(mem, ret, funs, Fun::HandlePending) => {
                Native::GilAtSafePoint
            }
            // The handler inlined into the eval loop (3.11), which calls the GIL's wait
            // itself. An eval loop found past unknown frames is a C function's caller
            // (the C call returning, its GIL taken back through a tail call).
            (Some(&(Fun::EvalLoop, ret)), _) if calls_directly(mem, ret, funs, Fun::TakeGil) || calls_directly(mem, ret, funs, Fun::ThreadAttach) => {
                Native::GilAtSafePoint
            }
            _ => Native::GilAfterCall,
        };
    }
    // Inside a system call the stop interrupted (it restarts when the thread runs on):
    // whether it is a wait that can be made again is the Python-level callee's to say.
    if regs.orig_rax != u64::MAX && interrupted(regs.rax) {
        return Native::Blocked;
    }
    Native::Elsewhere
}

/// Calls that a thread blocked in can make again in the new process: waits whose effect
/// comes only when they return.
const REDOABLE_CALLS: &[&str] = &[
    "_thread.lock.acquire",
    "_thread.lock.acquire_lock",
    "_thread.lock.__enter__",
    "_thread.RLock.acquire",
    "_thread.RLock.__enter__",
    "_thread._ThreadHandle.join",
    "_queue.SimpleQueue.get",
    "time.sleep",
    "select.select",
    "select.poll.poll",
    "select.epoll.poll",
];

fn qualified_type_name(graph: &ObjectGraph, type_id: crate::snapshot::ObjId) -> Option<String> {
    match &graph.get(type_id).value {
        Value::Type(t) if t.module == "builtins" => Some(t.qualname.clone()),
        Value::Type(t) => Some(format!("{}.{}", t.module, t.qualname)),
        _ => None,
    }
}

/// The C function a frame blocked in a call is calling, as "module.type.name" or
/// "module.name", from the call's inputs on its stack.
fn callee(graph: &ObjectGraph, f: &FrameInfo, op: &str, arg: usize) -> Option<String> {
    let len = f.stack.len();
    if op == "BEFORE_WITH" {
        let mut manager = (*f.stack.last()?)?;
        // Already replaced by its `__exit__` (bound to the manager) once `__enter__` runs.
        if let Value::BuiltinFunction { name, self_: Some(m), .. } = &graph.get(manager).value {
            if name == "__exit__" {
                manager = *m;
            }
        }
        return Some(format!("{}.__enter__", qualified_type_name(graph, graph.get(manager).type_id?)?));
    }
    let back: &[usize] = if op == "CALL_KW" { &[arg + 3, arg + 2] } else { &[arg + 2, arg + 1] };
    for &b in back {
        let Some(id) = len.checked_sub(b).and_then(|i| f.stack.get(i).copied().flatten()) else { continue };
        match &graph.get(id).value {
            Value::BuiltinFunction { name, self_, module } => {
                let owner = self_.filter(|&o| !matches!(graph.get(o).value, Value::Module { .. }));
                return Some(match (owner, module) {
                    (Some(o), _) => format!("{}.{name}", qualified_type_name(graph, graph.get(o).type_id?)?),
                    (None, Some(m)) => format!("{m}.{name}"),
                    (None, None) => name.clone(),
                });
            }
            Value::Descriptor { owner, name } => return Some(format!("{}.{name}", qualified_type_name(graph, *owner)?)),
            _ => {}
        }
    }
    None
}

fn describe(graph: &ObjectGraph, f: &FrameInfo) -> String {
    match &graph.get(f.code).value {
        Value::Code(c) => format!("{} ({}:{})", c.qualname, c.filename, f.line.unwrap_or(0)),
        _ => "?".into(),
    }
}

/// Where thread state `tstate` (native id `native_id`, stopped with `regs`) stands, read
/// with a decoder of its own (`d`, whose objects must not enter the snapshot). The
/// frames are `chain` (innermost first, pyteleport's own already cut off).
pub fn classify(
    d: &mut Decoder<'_>,
    funs: Option<&NativeFunctions>,
    regs: &libc::user_regs_struct,
    native_id: i32,
    chain: &[u64],
) -> Result<std::result::Result<Rest, NotAtRest>> {
    let Some(&innermost) = chain.first() else { return Ok(Ok(Rest::NoPythonFrame)) };
    let table = crate::capture::opcode_table(d.py)?;
    let mut f = d.read_frame(innermost, false)?;
    let code = match &d.graph.get(f.code).value {
        Value::Code(c) => c.as_ref().clone(),
        _ => return Ok(Err(NotAtRest { native_id, name: None, place: "?".into(), why: "its frame has no code object".into() })),
    };
    let place = describe(&d.graph, &f);
    let not = |why: String| Ok(Err(NotAtRest { native_id, name: None, place: place.clone(), why }));
    let Some(funs) = funs else {
        return not("the interpreter has no symbols to tell where the thread waits (a stripped build)".into());
    };
    match native_place(d.mem, funs, regs) {
        Native::GilAtSafePoint => {
            let Ok((_, depth)) = between_resume(&code, f.lasti, table) else {
                return not("it stopped where no resume point is known".into());
            };
            d.restack(&mut f, depth as usize)?;
            Ok(Ok(Rest::BetweenInstructions))
        }
        Native::GilAfterCall => not("it is coming back from a call into C".into()),
        Native::Elsewhere => not("it is running C code".into()),
        Native::Blocked => {
            let instrs = crate::bytecode::instructions(&code.code, table);
            let Some(ins) = instrs.iter().find(|i| (i.offset as i64) <= f.lasti && f.lasti < (i.offset + i.size) as i64) else {
                return not("it is inside a call pyteleport cannot make again".into());
            };
            let op = table.info(ins.opcode).name;
            let Ok((_, depth)) = redo_resume(&code, f.lasti, table) else {
                return not(format!("it is inside {op}, which pyteleport cannot make again"));
            };
            d.restack(&mut f, depth as usize)?;
            d.drain()?;
            // The call instruction's oparg: the base instruction's (a KW_NAMES may come first).
            let arg = ins.arg as usize;
            match callee(&d.graph, &f, op, arg) {
                Some(name) if REDOABLE_CALLS.contains(&name.as_str()) => Ok(Ok(Rest::RedoCall)),
                Some(name) => not(format!("it is inside a call to {name}, which pyteleport cannot make again")),
                None => not("it is inside a call pyteleport cannot make again".into()),
            }
        }
    }
}
