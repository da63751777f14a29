//! `pyteleport attach`: move or checkpoint an unmodified CPython process.
//!
//! Safe point: the interpreter's own pending-work check. We set the "signals pending"
//! request (3.11/3.12: the runtime flag and the interpreter's eval breaker; 3.13: the
//! main thread's eval-breaker bit) and put a hardware breakpoint (debug register, main
//! thread only) on the function the eval loop calls for it. The main thread stops there
//! between two bytecode instructions, holding the GIL, with no allocation or GC in
//! flight. Nothing is injected: no code runs in the target, no byte of its code is
//! changed, and the kernel drops the debug register if pyteleport dies, so a killed
//! attach leaves the target running as before (the request only makes the interpreter
//! look for signals once). See docs/attach.md.

use std::ffi::OsString;
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ptrace_tools::code::{direct_branch_targets, range_containing};
use ptrace_tools::elf::{symbol_address_in_process, ElfFile};
use ptrace_tools::memory::{MemoryReader, ProcessMemory};
use ptrace_tools::stop::{RunOutcome, StoppedProcess};

use crate::capture::{carry_everything, describe_threads, end_with_the_program, opcode_table, read_interpreter_state, split_off_restore_driver};
use crate::decode::{Decoder, Limits};
pub use crate::error::AttachError;
use crate::error::{Error, Result};
use crate::intarget::InTarget;
use crate::launch::{interpreter_with_pyteleport, status_code, NotReady, Restore};
use crate::memcopy::{MemoryCopy, PreparedBuffers};
use crate::process::PythonProcess;
use crate::resume::{between_resume, plan_resume, redo_resume, ResumeError, Stop};
use crate::snapshot::{ObjId, Snapshot, Value};

type OpenFiles = std::collections::HashMap<i32, ptrace_tools::OpenFile>;
use crate::decode::Environ;

pub struct AttachOptions {
    pub pid: i32,
    pub timeout: Duration,
    pub checkpoint: Option<PathBuf>,
    pub exit_after_checkpoint: bool,
    pub main_thread_only: bool,
    pub python: Option<String>,
}

/// What an attach reports while it works (the CLI prints it, or not).
#[derive(Debug)]
pub enum Progress<'a> {
    /// The main thread is not at a safe point yet; it is in `place` ("qualname (file:line)").
    WaitingForSafePoint { pid: i32, place: &'a str },
    /// A safe point came, inside a frame that cannot be resumed: waiting for it to return.
    NotResumableYet { why: &'a ResumeError },
    /// A safe point came while something could not be carried (`what`): waiting.
    NotCarriableYet { what: &'a str },
    /// Another thread is not where it can be carried from (`what`: which, where, why).
    ThreadsNotAtRest { what: &'a str },
    /// `--main-thread-only`: these threads (`thread N "name"`, where) stay behind.
    LeavingThreadsBehind { threads: &'a [(String, String)] },
    /// `paused`: how long the target was held, when it went on right after the copy.
    CheckpointWritten { path: &'a std::path::Path, paused: Option<Duration> },
    /// The new process runs; `paused`: from the safe point until it was told to go.
    Moved { pid: i32, new_pid: u32, paused: Duration },
}

/// How an attach ended.
#[derive(Debug)]
pub enum Outcome {
    Checkpointed,
    /// The new process ended with `status`; the original ended the same way.
    Moved {
        new_pid: u32,
        status: ExitStatus,
    },
}

/// Resume flag: lets a thread stopped on an execute breakpoint run that instruction.
const EFLAGS_RF: u64 = 1 << 16;

/// The function the eval loop calls from its pending-work check, per minor version.
fn safe_point_function(minor: u8) -> &'static str {
    // 3.11 inlines its handler into the eval loop; the signal check it calls is not.
    if minor == 11 {
        "_PyErr_CheckSignalsTstate"
    } else {
        "_Py_HandlePending"
    }
}

struct Target {
    py: PythonProcess,
    live: ProcessMemory,
    safe_point: u64,
    /// Address ranges of the eval loop: a hit is a safe point only when called from there.
    eval_ranges: Vec<(u64, u64)>,
    main_tstate: u64,
    /// How the main thread is carried: from the safe point, or (blocked long in a call
    /// that is made again, a `join()` or a long `sleep`) from that call.
    main_stop: Stop,
    /// The other threads, where the capture found them (each carried from there).
    resting: Vec<crate::capture::RestingThread>,
    functions: Option<crate::thread_rest::NativeFunctions>,
}

fn locate(pid: i32) -> Result<Target> {
    let live = ProcessMemory::new(pid);
    let py = PythonProcess::open(pid, &live)?;
    py.require_movable()?;
    let elf = ElfFile::open(&py.binary)?;
    let name = safe_point_function(py.version.minor);
    let no_safe_point =
        |why: &str| Error::NotPython { pid, detail: format!("{} {why}: no safe point can be reached from outside", py.binary.display()) };
    let handler = elf.symbol(name).ok_or_else(|| no_safe_point(&format!("has no symbol {name} (a stripped build?)")))?;
    let bias = elf.load_bias_in_process(&py.maps).ok_or_else(|| no_safe_point("is not mapped where expected"))?;
    // Link-time ranges of the eval loop: its symbols, and the unwind table's ranges
    // holding them (a stripped binary has no symbol for the cold part).
    let functions = elf.function_ranges();
    let mut eval = Vec::new();
    for sym in ["_PyEval_EvalFrameDefault", "_PyEval_EvalFrameDefault.cold"] {
        if let Some(s) = elf.symbol(sym) {
            eval.push(s.value..s.value + s.size.max(1));
            eval.extend(range_containing(&functions, s.value));
        }
    }
    let stop_at = pending_check_entry(&elf, &functions, &eval, handler.value);
    let eval_ranges = eval.iter().map(|r| (bias.wrapping_add(r.start), bias.wrapping_add(r.end))).collect();
    let functions = crate::thread_rest::NativeFunctions::locate(&py);
    Ok(Target {
        py,
        live,
        safe_point: bias.wrapping_add(stop_at),
        eval_ranges,
        main_tstate: 0,
        main_stop: Stop::BetweenInstructions,
        resting: vec![],
        functions,
    })
}

/// Where to stop: the pending-work handler when the eval loop calls it, else the small
/// function the eval loop calls that calls it. (Debian's LTO-built 3.11 inlines the
/// handler's callers into the eval loop except `handle_signals`, which it keeps out of
/// line: a stop in the handler would then never look called from the eval loop.)
fn pending_check_entry(elf: &ElfFile, functions: &[std::ops::Range<u64>], eval: &[std::ops::Range<u64>], handler: u64) -> u64 {
    let mut called = std::collections::BTreeSet::new();
    for r in eval {
        if let Some(code) = elf.bytes_at(r.clone()) {
            called.extend(direct_branch_targets(code, r.start));
        }
    }
    if functions.is_empty() || called.contains(&handler) {
        return handler;
    }
    for &f in &called {
        // A whole function starting there, and a small one: a helper, not a subsystem.
        let Some(r) = range_containing(functions, f).filter(|r| r.start == f && r.end - r.start < 4096) else { continue };
        if elf.bytes_at(r.clone()).is_some_and(|code| direct_branch_targets(code, r.start).contains(&handler)) {
            return f;
        }
    }
    handler
}

/// Fails once the command this tracer works for was killed (see `guardian`): up to the
/// moment the new process is told to go, that cancels the attach.
fn check_cancelled(pid: i32) -> Result<()> {
    match crate::guardian::attacher() {
        Some(attacher) if crate::guardian::attacher_gone() => Err(Error::Cancelled { pid, attacher }),
        _ => Ok(()),
    }
}

/// Ask the interpreter to run its pending-work check soon (see the module comment).
fn request_check(t: &Target) -> Result<()> {
    let l = t.py.layout;
    // Only while stopped, and only into structures that are still alive: a process that
    // is shutting down frees its thread states and interpreter.
    let mut d = Decoder::new(&t.py, &t.live, Limits::default());
    if !d.thread_states().map(|v| v.contains(&t.main_tstate)).unwrap_or(false) {
        return Err(AttachError::ShuttingDown { pid: t.py.pid }.into());
    }
    if let Some(eval_breaker) = l.tstate_eval_breaker {
        let at = t.main_tstate + eval_breaker as u64;
        let bits = t.live.read_u64(at)?;
        t.live.write(at, &(bits | 2).to_le_bytes())?; // _PY_SIGNALS_PENDING_BIT
    } else if let (Some(signals_pending), Some(eval_breaker)) = (l.runtime_signals_pending, l.interp_eval_breaker) {
        t.live.write(t.py.runtime_addr + signals_pending as u64, &1i32.to_le_bytes())?;
        let interp = t.live.read_u64(t.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        t.live.write(interp + eval_breaker as u64, &1i32.to_le_bytes())?;
    }
    Ok(())
}

/// Bring the main thread to a safe point. On success every thread is stopped and the
/// main thread sits at the entry of the pending-work handler, called from the eval loop.
#[allow(clippy::too_many_arguments)] // the wait's state, shared with capture_resumable's loop
fn reach_safe_point(
    t: &mut Target,
    stopped: &mut StoppedProcess,
    opts: &AttachOptions,
    deadline: Instant,
    progress: &mut dyn FnMut(Progress),
    announced: &mut bool,
    told: &mut bool,
    main_may_rest: bool,
) -> Result<()> {
    let pid = opts.pid;
    t.main_stop = Stop::BetweenInstructions;
    let waiting_since = Instant::now();
    // Armed through perf, not ptrace: it disappears with us if we are killed.
    let mut armed = Some(ptrace_tools::breakpoint::HwBreakpoint::on_execute(pid, t.safe_point)?);
    loop {
        check_cancelled(pid)?;
        request_check(t)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if !*announced {
            let place = describe_threads(&mut Decoder::new(&t.py, &t.live, Limits::default()))
                .ok()
                .and_then(|v| v.into_iter().find(|x| x.1 == pid))
                .map(|x| x.2)
                .unwrap_or_default();
            progress(Progress::WaitingForSafePoint { pid, place: &place });
            *announced = true;
        }
        match stopped.run_until_breakpoint(pid, left.min(Duration::from_millis(500)), || !crate::guardian::attacher_gone())? {
            RunOutcome::TimedOut => {
                // No check for a second: a main thread blocked in a call that can be made
                // again (a join, a long sleep, a lock or queue wait) is carried from there.
                if main_may_rest && waiting_since.elapsed() >= MAIN_REST_AFTER && main_blocked_in_redoable_call(t, stopped) {
                    t.main_stop = Stop::RedoCall;
                    return Ok(());
                }
                continue;
            }
            RunOutcome::Hit => {
                let mut regs = stopped.registers(pid)?;
                let ret = t.live.read_u64(regs.rsp)?;
                if t.eval_ranges.iter().any(|&(a, b)| a <= ret && ret < b) {
                    let Some(why) = not_resumable_here(t) else {
                        drop(armed.take());
                        return Ok(());
                    };
                    // Inside a frame called back from C (a `__next__` driven by `for`):
                    // ask again as soon as this check is over (the handler would consume a
                    // request made now), so that the next check, often the loop's own
                    // right after that frame returns, is the next hit.
                    if !*told {
                        progress(Progress::NotResumableYet { why: &why });
                        *told = true;
                    }
                    drop(armed.take());
                    let after_handler = ptrace_tools::breakpoint::HwBreakpoint::on_execute(pid, ret)?;
                    regs.eflags |= EFLAGS_RF;
                    stopped.set_registers(pid, regs)?;
                    let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
                    stopped.run_until_breakpoint(pid, left, || !crate::guardian::attacher_gone())?;
                    drop(after_handler);
                    let mut regs = stopped.registers(pid)?;
                    regs.eflags |= EFLAGS_RF;
                    stopped.set_registers(pid, regs)?;
                    armed = Some(ptrace_tools::breakpoint::HwBreakpoint::on_execute(pid, t.safe_point)?);
                    continue;
                }
                // Called from C code (a signal check inside a long call): not a point
                // between instructions. Step over the breakpoint and keep waiting.
                regs.eflags |= EFLAGS_RF;
                stopped.set_registers(pid, regs)?;
            }
        }
    }
    drop(armed);
    let place = describe_threads(&mut Decoder::new(&t.py, &t.live, Limits::default()))
        .ok()
        .and_then(|v| v.into_iter().find(|x| x.1 == pid))
        .map(|x| x.2)
        .unwrap_or_else(|| "unknown".into());
    Err(AttachError::NoSafePoint { pid, timeout: opts.timeout, place }.into())
}

/// How long the main thread may go without reaching a safe point before, if it is blocked
/// in a call made again, it is carried from that call instead.
const MAIN_REST_AFTER: Duration = Duration::from_secs(1);

/// Whether the stopped main thread is blocked in a call the new process can make again.
fn main_blocked_in_redoable_call(t: &Target, stopped: &StoppedProcess) -> bool {
    let Ok(regs) = stopped.registers(t.py.pid) else { return false };
    let mut d = Decoder::new(&t.py, &t.live, Limits::default());
    let Ok(mut chain) = d.frame_chain(t.main_tstate) else { return false };
    if split_off_restore_driver(&mut d, &mut chain).is_err() {
        return false;
    }
    matches!(crate::thread_rest::classify(&mut d, t.functions.as_ref(), &regs, t.py.pid, &chain), Ok(Ok(crate::thread_rest::Rest::RedoCall)))
}

/// The main thread stopped between instructions: its stack pointer is in a register, so
/// the innermost frame's stack is read only as deep as it is where the frame resumes
/// (deeper slots may hold a call's arguments, already freed).
/// The frames end where the program does (a restored process's restore driver and what
/// is below it are left out, the frames it keeps waiting put in their place).
fn read_main_thread(d: &mut Decoder<'_>, t: &Target) -> Result<crate::snapshot::ThreadInfo> {
    let mut chain = d.frame_chain(t.main_tstate)?;
    let pending = split_off_restore_driver(d, &mut chain)?;
    let mut thread = d.read_thread_part_between_instructions(t.main_tstate, true, &chain)?;
    let Some(innermost) = thread.frames.first_mut() else {
        return Err(AttachError::NoPythonCode.into());
    };
    let table = opcode_table(&t.py)?;
    let code = match &d.graph.get(innermost.code).value {
        Value::Code(c) => c.as_ref().clone(),
        _ => return Err(Error::corrupt(innermost.addr, "frame without code")),
    };
    let (_, depth) = match t.main_stop {
        Stop::RedoCall => redo_resume(&code, innermost.lasti, table)?,
        _ => between_resume(&code, innermost.lasti, table)?,
    };
    d.restack(innermost, depth as usize)?;
    if t.main_stop == Stop::RedoCall {
        crate::capture::with_manager_on_top(d, innermost)?;
    }
    end_with_the_program(d, &mut thread.frames, &pending)?;
    Ok(thread)
}

/// At a hit: why the main thread's stack cannot be resumed as it stands (a frame called
/// back from C), from a quick read with a small object budget; None when it can, or
/// when the quick read cannot tell (the full capture decides then).
fn not_resumable_here(t: &Target) -> Option<ResumeError> {
    let limits = Limits { max_objects: 20_000, ..Limits::default() };
    let mut d = Decoder::new(&t.py, &t.live, limits);
    let thread = read_main_thread(&mut d, t).ok()?;
    let table = crate::opcodes::table_for(t.py.version.major, t.py.version.minor)?;
    let graph = d.finish().ok()?;
    if graph.objects.iter().any(|o| matches!(o.value, Value::Unread(_))) {
        return None;
    }
    plan_resume(&graph, &thread.frames, table, None, Stop::BetweenInstructions).err().filter(ResumeError::is_called_from_c)
}

/// What a read of the stopped target gave.
enum Read {
    /// The main thread as a snapshot, and the environment `os.environ` holds.
    Done(Box<Snapshot>, Option<Environ>),
    /// Objects of C types that only their own `__reduce_ex__` can carry: their
    /// addresses, and the first one's type.
    NeedsReduce { addrs: Vec<u64>, type_name: String },
}

/// The main thread as a snapshot, and the environment `os.environ` holds at that moment.
/// `substitutions`: reduce tuples (in the target) standing for objects of C types.
/// `extras_gathered`: the in-target work left `sys._pyteleport_extras` (decimal context,
/// signal handlers) for this capture to read; until then a target that imported `decimal`
/// or `signal` asks for that work (an empty `NeedsReduce`).
fn capture(
    t: &Target,
    mem: &dyn MemoryReader,
    open_files: &Option<OpenFiles>,
    substitutions: &rustc_hash::FxHashMap<u64, u64>,
    extras_gathered: bool,
) -> Result<Read> {
    let mut d = Decoder::new(&t.py, mem, carry_everything());
    d.open_files = open_files.clone();
    d.substitutions = substitutions.clone();
    d.learn_stdio()?;
    let mut thread = read_main_thread(&mut d, t)?;
    let table = opcode_table(&t.py)?;
    let mut others = crate::capture::read_other_threads(&mut d, &t.resting)?;
    let carried = read_interpreter_state(&mut d)?;
    let environ = d.current_environ().unwrap_or(None);
    let wants_extras = !extras_gathered && imported_any(&mut d, &["decimal", "signal"]).unwrap_or(false);
    // (One thread: its Thread object is not needed, and no other thread holds RLocks.)
    let graph = if t.resting.is_empty() { d.finish()? } else { crate::capture::finish_threads(d, &mut thread, &mut others)? };
    let type_name = |id: usize| graph.type_info(id as ObjId).map(|t| format!("{}.{}", t.module, t.qualname)).unwrap_or_default();
    if let Some((id, obj)) = graph.objects.iter().enumerate().find(|(_, o)| matches!(o.value, Value::Unread(_))) {
        return Err(AttachError::NeedsShim { type_name: type_name(id), addr: obj.addr }.into());
    }
    let opaque: Vec<usize> = (0..graph.objects.len()).filter(|&i| matches!(graph.objects[i].value, Value::Opaque)).collect();
    if let Some(&first) = opaque.first() {
        return Ok(Read::NeedsReduce { addrs: opaque.iter().map(|&i| graph.objects[i].addr).collect(), type_name: type_name(first) });
    }
    let resume = plan_resume(&graph, &thread.frames, table, thread.handled_exception, t.main_stop)?;
    if wants_extras {
        return Ok(Read::NeedsReduce { addrs: vec![], type_name: String::new() });
    }
    Ok(Read::Done(Box::new(carried.into_snapshot(t.py.pid, t.py.version, table.magic, graph, (thread, resume), others)), environ))
}

/// Whether the target imported any of `modules` (`sys.modules`).
fn imported_any(d: &mut Decoder<'_>, modules: &[&str]) -> Result<bool> {
    let l = d.py.layout;
    let interp = d.ptr(d.py.runtime_addr + l.runtime_interpreters_head as u64)?;
    let dict = d.ptr(interp + l.interp_modules as u64)?;
    for (k, _) in d.dict_entries(dict)? {
        if d.is_exact(k, crate::process::BuiltinType::Str)? && modules.contains(&d.read_str(k)?.as_text().as_ref()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rounds of in-target reduction: a reduce result may hold objects needing their own
/// (a numpy array's dtype).
const MAX_REDUCE_ROUNDS: usize = 8;

/// Read the target stopped at its safe point, having it reduce (in itself) the objects of
/// C types memory reading cannot carry, and clean up after that before it runs again.
fn capture_with_reduce(t: &Target, stopped: &mut StoppedProcess, first: Read, open_files: &Option<OpenFiles>, timeout: Duration) -> Result<Read> {
    let mut read = first;
    let mut substitutions = rustc_hash::FxHashMap::default();
    let mut worker = None;
    let mut rounds = 0;
    let mut extras_gathered = false;
    let outcome = loop {
        let Read::NeedsReduce { addrs, type_name } = &read else { break Ok(read) };
        if rounds == MAX_REDUCE_ROUNDS {
            break Err(AttachError::NeedsShim { type_name: type_name.clone(), addr: addrs.first().copied().unwrap_or(0) }.into());
        }
        if worker.is_none() {
            worker = InTarget::locate(&t.py, t.py.pid);
        }
        let Some(w) = worker.as_mut() else {
            match addrs.first() {
                Some(&addr) => break Err(AttachError::NeedsShim { type_name: type_name.clone(), addr }.into()),
                // Only the interpreter's extras were wanted: carried without them, as
                // before this work existed (the interpreter lacks the functions for it).
                None => {
                    extras_gathered = true;
                    match capture(t, &t.live, open_files, &substitutions, true) {
                        Ok(next) => {
                            read = next;
                            continue;
                        }
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        if !extras_gathered {
            // Once, with the first round: the decimal context and signal handlers.
            if let Err(e) = w.gather_extras(stopped, timeout) {
                break Err(e);
            }
            extras_gathered = true;
        }
        if !addrs.is_empty() {
            let reduced = w.reduce(&t.py, stopped, addrs, timeout).and_then(|list| crate::supervisor::read_list(&t.py, &t.live, list));
            match reduced {
                Ok(results) if results.len() == addrs.len() => substitutions.extend(addrs.iter().copied().zip(results)),
                Ok(_) => break Err(AttachError::InTargetFailed { what: "reducing objects of C types".into(), why: "a short answer".into() }.into()),
                Err(e) => break Err(e),
            }
        }
        rounds += 1;
        match capture(t, &t.live, open_files, &substitutions, extras_gathered) {
            Ok(next) => read = next,
            Err(e) => break Err(e),
        }
    };
    if let Some(w) = worker.as_mut() {
        w.clean_up(stopped, timeout)?;
    }
    outcome
}

/// A duplicate of the target's file descriptor `fd`, sharing its open file (and offset):
/// pidfd_getfd, or reopening /proc/PID/fd/FD (appending for regular files) on kernels
/// without it.
fn target_fd(pid: i32, fd: i32, write: bool) -> Result<OwnedFd> {
    // SAFETY: plain syscalls on integers; every descriptor they return is new and ours,
    // wrapped in an OwnedFd once (or closed) so it is closed exactly once.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if pidfd >= 0 {
            let dup = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
            libc::close(pidfd);
            if dup >= 0 {
                return Ok(OwnedFd::from_raw_fd(dup));
            }
        }
    }
    let path = format!("/proc/{pid}/fd/{fd}");
    let f = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .append(write)
        .open(&path)
        .map_err(|source| Error::Io { context: format!("cannot open {path}"), source })?;
    Ok(OwnedFd::from(f))
}

/// An interpreter that can import pyteleport for the target's version (see
/// `launch::interpreter_with_pyteleport`).
fn restore_python(t: &Target, snap: &Snapshot, explicit: Option<&str>) -> Result<(String, Option<PathBuf>)> {
    // `sys.executable` (a venv's python keeps the venv's packages), else the binary.
    let exe = Some(snap.process.executable.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| ptrace_tools::threads::exe_path(t.py.pid).ok().map(|p| p.display().to_string()))
        .unwrap_or_default();
    Ok(interpreter_with_pyteleport(t.py.version.major, t.py.version.minor, &exe, explicit)?)
}

/// Write what the stopped target's `sys.stdout`/`sys.stderr` buffered but had not written
/// to its own descriptors (it is about to end without flushing).
fn write_pending_output(t: &Target) {
    for (fd, data) in Decoder::new(&t.py, &t.live, Limits::default()).stdio_pending_output().unwrap_or_default() {
        if let Ok(dup) = target_fd(t.py.pid, fd, true) {
            let mut f = std::fs::File::from(dup);
            let _ = std::io::Write::write_all(&mut f, &data);
        }
    }
}

/// End the stopped original with `code`: its main thread alone runs, into `_exit`. The
/// other threads never run again (were the main thread carried from a call, without the
/// GIL, one of them could otherwise run the program on for a moment, printing twice
/// what the new process prints).
fn end_target(t: &Target, stopped: StoppedProcess, code: i32) -> Result<()> {
    exit_target(t, &stopped, code)?;
    run_main_thread_to_the_end(t, stopped)
}

/// Let the original's main thread alone run to the process's end (the others stay
/// stopped); should it not end within 10 s, every thread is let go.
fn run_main_thread_to_the_end(t: &Target, mut stopped: StoppedProcess) -> Result<()> {
    if !stopped.run_alone_to_the_end(t.py.pid, Duration::from_secs(10))? {
        stopped.resume()?;
    }
    Ok(())
}

/// Make the stopped main thread call `_exit(code)` when it runs again.
fn exit_target(t: &Target, stopped: &StoppedProcess, code: i32) -> Result<()> {
    let exit_addr = libc_function(t, "_exit").ok_or(AttachError::NoExit)?;
    let mut regs = stopped.registers(t.py.pid)?;
    regs.rip = exit_addr;
    regs.rdi = code as u64;
    // As if called: 16-byte aligned before the (never used) return address.
    regs.rsp = ((regs.rsp - 4096) & !0xf) - 8;
    regs.orig_rax = u64::MAX; // not in a system call: nothing to restart
    regs.eflags |= EFLAGS_RF;
    Ok(stopped.set_registers(t.py.pid, regs)?)
}

/// What a capture at a resumable safe point leaves: the target still stopped (a move, or
/// a checkpoint that ends it), or already running again (`paused`: how long it was held).
struct Captured {
    stopped: Option<StoppedProcess>,
    snap: Snapshot,
    environ: Option<Environ>,
    started: Instant,
    paused: Option<Duration>,
}

/// Stop at a safe point and capture the main thread. A safe point inside a frame called
/// back from C (a `sorted()` key, a `__next__` driven by a `for` loop, a `__repr__`, a
/// class body) cannot be resumed: the target is let go and the wait goes on, until a
/// resumable moment comes or the deadline passes.
fn capture_resumable(t: &mut Target, opts: &AttachOptions, deadline: Instant, progress: &mut dyn FnMut(Progress)) -> Result<Captured> {
    let (mut told, mut announced) = (false, false);
    let left_told = &mut false;
    let mut hold_for_reduce = false;
    // Until in-target work turns out to be needed: it runs only at a safe point.
    let mut main_may_rest = true;
    loop {
        let prepared = PreparedBuffers::for_maps(&t.py.maps, 8 << 30);
        let mut stopped = StoppedProcess::stop(opts.pid).map_err(|e| ended_while_waiting(e.into(), told, opts.pid))?;
        let threads = describe_threads(&mut Decoder::new(&t.py, &t.live, Limits::default()))?;
        let Some(main) = threads.iter().find(|x| x.1 == opts.pid) else {
            return Err(AttachError::NoMainThread { pid: opts.pid }.into());
        };
        t.main_tstate = main.0;
        reach_safe_point(t, &mut stopped, opts, deadline, progress, &mut announced, &mut told, main_may_rest)
            .map_err(|e| ended_while_waiting(e, told, opts.pid))?;
        // Every other thread moves too, from where it waits (see `thread_rest`); one that
        // is not at such a point yet is let run on, and the wait goes on.
        t.resting = vec![];
        if opts.main_thread_only && !*left_told {
            let names = crate::capture::thread_names(&mut Decoder::new(&t.py, &t.live, Limits::default()))?;
            let others: Vec<(String, String)> = threads
                .iter()
                .filter(|x| x.1 != opts.pid && x.2 != "no Python frame")
                .map(|x| (crate::thread_rest::thread_label(x.1, names.get(&x.1).map(String::as_str)), x.2.clone()))
                .collect();
            if !others.is_empty() {
                progress(Progress::LeavingThreadsBehind { threads: &others });
            }
            *left_told = true;
        }
        if !opts.main_thread_only {
            let registers = |tid: i32| stopped.registers(tid).ok();
            match crate::capture::threads_at_rest(&t.py, &t.live, t.functions.as_ref(), &[t.main_tstate], &registers)? {
                Ok(resting) => t.resting = resting,
                Err(not) if Instant::now() + Duration::from_millis(20) < deadline => {
                    drop(stopped); // runs on
                    check_cancelled(opts.pid)?;
                    if !told {
                        let first = not.first().map(|n| format!("{} in {}: {}", n.who(), n.place, n.why)).unwrap_or_default();
                        progress(Progress::ThreadsNotAtRest { what: &first });
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(not) => {
                    let threads = not.into_iter().map(|n| (n.who(), format!("{}: {}", n.place, n.why))).collect();
                    return Err(AttachError::OtherThreads { pid: opts.pid, threads }.into());
                }
            }
        }
        let started = Instant::now();
        if opts.checkpoint.is_some() && !opts.exit_after_checkpoint && t.main_stop == Stop::BetweenInstructions {
            // The target goes on after this checkpoint: what it printed before it is
            // written now, by its own flush, so that it comes out once whether the target
            // or a restore of the checkpoint (the target killed meanwhile) goes on.
            if let Err(e) = flush_before_checkpoint(t, &mut stopped) {
                drop(stopped); // runs on; the flush finishes by itself
                return Err(e);
            }
        }
        t.py.maps = ptrace_tools::maps::read_maps(opts.pid)?;
        let stack_pointers: Vec<u64> = stopped.threads().iter().filter_map(|&x| stopped.registers(x).ok()).map(|r| r.rsp).collect();
        let copy = MemoryCopy::take_prepared(opts.pid, &t.py.maps, 8 << 30, &stack_pointers, prepared);
        // Open files' offsets belong to the same moment as the memory.
        let open_files = ptrace_tools::open_files(opts.pid).ok();
        let mut held = Some(stopped);
        let mut paused = None;
        if opts.checkpoint.is_some() && !opts.exit_after_checkpoint && copy.is_some() && !hold_for_reduce {
            if let Some(s) = held.take() {
                s.resume()?;
            }
            paused = Some(started.elapsed());
        }
        let mut captured = match &copy {
            Some(c) => capture(t, c, &open_files, &Default::default(), false),
            None => capture(t, &t.live, &open_files, &Default::default(), false),
        };
        if let Ok(Read::NeedsReduce { .. }) = &captured {
            if t.main_stop != Stop::BetweenInstructions {
                // In-target work needs the main thread at a safe point, not in a call:
                // wait for one from now on.
                main_may_rest = false;
                hold_for_reduce = true;
                drop(held);
                check_cancelled(opts.pid)?;
                continue;
            }
            match held.as_mut() {
                // In-target work needs the target at its safe point: take the next one
                // and hold the target through the capture this time.
                None => {
                    hold_for_reduce = true;
                    continue;
                }
                Some(stopped) => {
                    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
                    let first = captured?;
                    captured = capture_with_reduce(t, stopped, first, &open_files, left);
                    if opts.checkpoint.is_some() && !opts.exit_after_checkpoint {
                        if let Some(s) = held.take() {
                            s.resume()?;
                        }
                        paused = Some(started.elapsed());
                    }
                }
            }
        }
        match captured {
            Ok(Read::Done(snap, environ)) => return Ok(Captured { stopped: held, snap: *snap, environ, started, paused }),
            Ok(Read::NeedsReduce { .. }) => unreachable!("capture_with_reduce reduces or fails"),
            Err(Error::Resume(why)) if why.is_called_from_c() && Instant::now() + Duration::from_millis(20) < deadline => {
                drop(held); // runs on
                check_cancelled(opts.pid)?;
                if !told {
                    progress(Progress::NotResumableYet { why: &why });
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Error::Resume(why)) if why.is_called_from_c() => {
                return Err(AttachError::NeverResumable { pid: opts.pid, timeout: opts.timeout, why }.into());
            }
            Err(Error::Capture(crate::error::CaptureError::NotNow { what })) if Instant::now() + Duration::from_millis(20) < deadline => {
                drop(held); // runs on
                check_cancelled(opts.pid)?;
                if !told {
                    progress(Progress::NotCarriableYet { what: &what });
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Error::Capture(crate::error::CaptureError::NotNow { what })) => {
                return Err(AttachError::NeverCarriable { pid: opts.pid, timeout: opts.timeout, what }.into());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Flush the stopped target's `sys.stdout`/`sys.stderr` when they hold unwritten output
/// (in-target, at its safe point); nothing to do, or no way to do it, leaves it as it is.
fn flush_before_checkpoint(t: &Target, stopped: &mut StoppedProcess) -> Result<()> {
    let pending = Decoder::new(&t.py, &t.live, Limits::default()).stdio_pending_output().unwrap_or_default();
    if pending.is_empty() {
        return Ok(());
    }
    let Some(mut worker) = InTarget::locate(&t.py, t.py.pid) else { return Ok(()) };
    worker.flush_stdio(stopped, Duration::from_secs(2))
}

/// The target ended while we waited for a resumable moment: say so, not "exited while
/// being inspected".
fn ended_while_waiting(e: Error, waited: bool, pid: i32) -> Error {
    match e {
        Error::Process(ptrace_tools::Error::ProcessExited { .. }) | Error::Process(ptrace_tools::Error::NoSuchProcess { .. }) if waited => {
            AttachError::EndedWhileWaiting { pid }.into()
        }
        e => e,
    }
}

/// Whether `pid` leaves signal `sig` to its default action (neither caught nor ignored).
/// Make the stopped original's disposition of `sig` the default one (`signal(sig,
/// SIG_DFL)` called by its main thread, which stands at the pending-work handler's entry).
fn reset_disposition(t: &Target, stopped: &mut StoppedProcess, sig: i32) -> bool {
    let (Some(signal), Some(mut worker)) = (libc_function(t, "signal"), InTarget::locate(&t.py, t.py.pid)) else { return false };
    worker.call_c(stopped, signal, &[sig as u64, 0], Duration::from_secs(2)).is_ok() && default_disposition(t.py.pid, sig)
}

fn default_disposition(pid: i32, sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let mask = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let bit = 1u64 << (sig - 1);
    matches!((mask("SigCgt:"), mask("SigIgn:")), (Some(caught), Some(ignored)) if caught & bit == 0 && ignored & bit == 0)
}

/// Run an attach. `progress` hears what happens along the way.
pub fn attach(opts: &AttachOptions, progress: &mut dyn FnMut(Progress)) -> Result<Outcome> {
    if let Some(path) = &opts.checkpoint {
        // A destination that would be refused is refused before the target is stopped.
        crate::snapshot::files::check_destination(path)?;
    }
    let mut t = locate(opts.pid)?;
    let deadline = Instant::now() + opts.timeout;
    let Captured { stopped, snap, environ, started, paused } = capture_resumable(&mut t, opts, deadline, progress)?;
    if let Some(path) = &opts.checkpoint {
        check_cancelled(opts.pid)?;
        snap.write_atomically(path)?;
        match stopped {
            // A checkpoint let the target go on as soon as its memory was copied.
            None => progress(Progress::CheckpointWritten { path, paused: Some(paused.unwrap_or_default()) }),
            Some(stopped) => {
                if opts.exit_after_checkpoint {
                    // Its buffered output is its own (the restore goes on after it): out
                    // before it ends, as a plain exit would flush it.
                    write_pending_output(&t);
                    end_target(&t, stopped, 0)?;
                } else {
                    stopped.resume()?;
                }
                progress(Progress::CheckpointWritten { path, paused: None });
            }
        }
        return Ok(Outcome::Checkpointed);
    }
    let mut stopped = stopped.ok_or(AttachError::ReleasedEarly)?;
    // Migration: the original stays stopped until the new process ends, then exits with
    // its status.
    check_cancelled(opts.pid)?;
    let (python, site) = restore_python(&t, &snap, opts.python.as_deref())?;
    let bytes = snap.to_bytes()?;
    let stdin = target_fd(opts.pid, 0, false)?;
    let stdout = target_fd(opts.pid, 1, true)?;
    let stderr = target_fd(opts.pid, 2, true)?;
    // What the original printed but had not flushed comes out first, in order.
    write_pending_output(&t);
    // The new process waits for a go byte: if we die before sending it, it reads EOF and
    // gives up, and the original runs on. Once it goes, the original is ours to end: the
    // move completes even if the attacher command is killed (we are its guarded tracer),
    // and if this tracer itself dies the kernel kills the original rather than letting
    // both run.
    // Before that it rebuilds everything and says "ready" on a second pipe, or why it
    // cannot, while the original stays stopped: a state that fails to rebuild costs the
    // original nothing.
    // In an in-memory file: nothing to read for others, nothing to leave behind.
    let mut restore = Restore::from_memory(python, &bytes)?
        .wait_for_go()
        .original(opts.pid)
        .named_as_process(opts.pid)
        .as_user_of(opts.pid)
        .stdio(stdin, stdout, stderr)
        .site_first(site);
    // The environment as the program holds it now (`os.environ`), else as it started.
    if let Some(vars) = environment_of(opts.pid, environ) {
        restore = restore.environment(vars);
    }
    if let Ok(cwd) = std::fs::read_link(format!("/proc/{}/cwd", opts.pid)) {
        restore = restore.current_dir(cwd);
    }
    let mut child = restore.spawn()?;
    match child.wait_ready_unless(&crate::guardian::attacher_gone) {
        Ok(()) => {}
        Err(NotReady::Cancelled) => {}
        Err(why) => return Err(AttachError::NotRebuilt { pid: opts.pid, why }.into()),
    }
    if let Err(e) = check_cancelled(opts.pid) {
        // The original goes on first: the new process, told nothing, only gives up, and
        // however long that takes is no longer the original's wait.
        drop(stopped);
        child.abandon();
        return Err(e);
    }
    // Committed: from here the original must never run on. Were this tracer killed now,
    // the kernel kills the original (EXITKILL), and the new process, seeing "committing"
    // and then the original's end, runs the program: once, whenever we die. Killed
    // before "committing", the original runs on and the new process gives up, however
    // soon the original then ends.
    if let Err(e) = child.committing() {
        drop(stopped);
        child.abandon();
        return Err(e.into());
    }
    stopped.kill_if_tracer_dies()?;
    child.go()?;
    let new_pid = child.id();
    progress(Progress::Moved { pid: opts.pid, new_pid, paused: started.elapsed() });
    let waited = forward_signals_until_exit(&t, &mut stopped, &mut child.child, new_pid as i32);
    let (status, original_gone) = waited?;
    if original_gone {
        // Killed from outside meanwhile (SIGKILL cannot be caught): the program ran on.
        return Ok(Outcome::Moved { new_pid, status });
    }
    // Killed by a signal: the original dies of the same one (when it does not catch or
    // ignore it), so its parent sees exactly what a plain run would have shown.
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // A handler of the original's own (Python's for SIGINT) must not catch it: the
        // program's handlers ran in the new process, which still died of it.
        let defaulted = default_disposition(opts.pid, sig) || reset_disposition(&t, &mut stopped, sig);
        // SAFETY: kill(2) on the target we are tracing; no memory is involved.
        if defaulted && unsafe { libc::kill(opts.pid, sig) } == 0 {
            // The main thread alone takes it: no other thread runs on meanwhile.
            run_main_thread_to_the_end(&t, stopped)?;
            return Ok(Outcome::Moved { new_pid, status });
        }
    }
    end_target(&t, stopped, status_code(status))?;
    Ok(Outcome::Moved { new_pid, status })
}

/// Signals the original passes on to the new process after a move: what a job's
/// supervisor (Slurm, Kubernetes, systemd), a terminal or a user sends to the pid it knows.
const FORWARDED_SIGNALS: [i32; 12] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGALRM,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Wait for the new process to end while the original stays the job's face: its main
/// thread is parked in libc's `pause()` (the others stay stopped), where every signal
/// sent to the original lands; each is swallowed and, if forwarded, sent on to the new
/// process. Returns the new process's status, and whether the original itself is gone
/// (killed meanwhile by SIGKILL). Without `pause` in the target, signals are not passed on.
fn forward_signals_until_exit(
    t: &Target,
    stopped: &mut StoppedProcess,
    child: &mut std::process::Child,
    new_pid: i32,
) -> Result<(std::process::ExitStatus, bool)> {
    let pid = t.py.pid;
    let waiting = |e: std::io::Error| Error::Io { context: "waiting for the new process".into(), source: e };
    let Some(pause) = libc_function(t, "pause") else {
        return Ok((crate::guardian::wait_child(child).map_err(waiting)?, false));
    };
    let saved = stopped.registers(pid)?;
    let mut parked = saved;
    parked.rip = pause;
    // As if called, below the stack in use; `pause` only returns after a handler runs,
    // and no handler of the program runs while parked (every signal is swallowed).
    parked.rsp = ((saved.rsp - 4096) & !0xf) - 8;
    parked.orig_rax = u64::MAX;
    parked.eflags |= EFLAGS_RF;
    stopped.set_registers(pid, parked)?;
    let outcome = loop {
        if let Some(status) = child.try_wait().map_err(waiting)? {
            break (status, false);
        }
        crate::guardian::release_output_if_orphaned();
        match stopped.run_alone_until_signal(pid, Duration::from_millis(100))? {
            ptrace_tools::AloneOutcome::Signal(sig) if FORWARDED_SIGNALS.contains(&sig) => {
                // SAFETY: kill(2) on the new process we started and are waiting for.
                unsafe { libc::kill(new_pid, sig) };
            }
            ptrace_tools::AloneOutcome::Signal(_) | ptrace_tools::AloneOutcome::TimedOut => {}
            ptrace_tools::AloneOutcome::Gone => break (crate::guardian::wait_child(child).map_err(waiting)?, true),
        }
    };
    if !outcome.1 {
        stopped.set_registers(pid, saved)?;
    }
    Ok(outcome)
}

/// The address of a libc function in the target.
fn libc_function(t: &Target, name: &str) -> Option<u64> {
    let libc_map = t.py.maps.iter().find(|m| {
        m.offset == 0
            && m.path
                .as_ref()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
    })?;
    let elf = ElfFile::open(libc_map.path.as_ref()?).ok()?;
    symbol_address_in_process(&t.py.maps, &elf, name)
}

/// The environment for the new process: `os.environ` as read from the program, else the
/// one it started with (/proc/PID/environ).
fn environment_of(pid: i32, environ: Option<Environ>) -> Option<Vec<(OsString, OsString)>> {
    use std::os::unix::ffi::OsStringExt;
    if let Some(vars) = environ {
        return Some(vars.into_iter().map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v))).collect());
    }
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let vars = env
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .filter_map(|var| {
            let text = String::from_utf8_lossy(var);
            text.split_once('=').map(|(k, v)| (OsString::from(k), OsString::from(v)))
        })
        .collect();
    Some(vars)
}
