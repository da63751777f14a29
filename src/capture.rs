//! Capture code shared by the teleport supervisor and attach: what is read besides the
//! frames (the interpreter's `sys` state, where the program's `__main__` body is), the
//! bounds of a full read, and the errors of a capture.

use crate::decode::{Decoder, Limits};
pub use crate::error::CaptureError;
use crate::error::{Error, Result};
use crate::opcodes::{self, OpcodeTable};
use crate::process::{PyVersion, PythonProcess};
use crate::resume::{between_resume, plan_resume, redo_resume, Stop};
use crate::snapshot::{FrameInfo, FrameResume, ObjId, ObjectGraph, OtherThread, ProcessInfo, Snapshot, ThreadInfo, Value};
use crate::thread_rest::{classify, NativeFunctions, NotAtRest, Rest};
use std::collections::HashMap;

/// Bounds of a capture, which carries everything: only against a corrupt heap.
pub fn carry_everything() -> Limits {
    Limits { module_dicts: vec!["__main__".into()], deep: true, max_objects: 100_000_000, max_len: 1 << 34, max_bytes: 1 << 36 }
}

/// The opcode table of the process's CPython.
pub fn opcode_table(py: &PythonProcess) -> std::result::Result<&'static OpcodeTable, CaptureError> {
    opcodes::table_for(py.version.major, py.version.minor).ok_or_else(|| CaptureError::NoOpcodeTable { version: py.version.to_string() })
}

/// Where `__main__`'s module body is among the frames (innermost first): the outermost
/// frame of the program. Code run by `exec` is also named `<module>`; only the frame whose
/// globals are `__main__`'s namespace counts.
pub fn main_body_position(d: &mut Decoder<'_>, frames: &[FrameInfo]) -> Result<Option<usize>> {
    let main_dict = d.module_dict_address("__main__")?;
    Ok(frames.iter().position(|f| {
        let is_module_code = matches!(&d.graph.get(f.code).value, Value::Code(c) if c.name == "<module>");
        let globals = f.globals.map(|g| d.graph.get(g).addr);
        is_module_code && globals.is_some() && (main_dict.is_none() || globals == main_dict)
    }))
}

/// In a process that is itself a restore (by `pyteleport restore`, an attach-move or a
/// teleport), the program's frames outside the running one wait as entered generators in
/// the restore driver's `pending` list, and the driver and what is below it are
/// pyteleport's: cut them off `chain` (innermost first) and return those generators,
/// innermost first. Nothing when the process is no restore.
pub fn split_off_restore_driver(d: &mut Decoder<'_>, chain: &mut Vec<u64>) -> Result<Vec<u64>> {
    let Some(pos) = find_restore_driver(d, chain)? else { return Ok(vec![]) };
    let pending = driver_pending(d, chain[pos])?;
    chain.truncate(pos);
    Ok(pending)
}

/// Make `frames` end where the program does: at its `__main__` module body (what calls it,
/// runpy for `python -m`, is the interpreter's start-up), or else, in a restored process,
/// with the frames of the `pending` generators waiting outside the running ones.
pub fn end_with_the_program(d: &mut Decoder<'_>, frames: &mut Vec<FrameInfo>, pending: &[u64]) -> Result<()> {
    if let Some(pos) = main_body_position(d, frames)? {
        frames.truncate(pos + 1);
        return Ok(());
    }
    let l = d.py.layout;
    for &gen in pending {
        let mut f = d.read_frame(gen + l.gen_iframe as u64, true)?;
        // Entered frames point at their next instruction: 3.11/3.12 keep the unit before
        // it (prev_instr), 3.13 the instruction itself. Plan from the unit before.
        if l.frame_instr_ptr.is_some() {
            f.lasti -= 1;
        }
        frames.push(f);
    }
    Ok(())
}

/// Position of pyteleport's restore driver among the frames, innermost first: the frame
/// running the code object a restored process registers as `sys.<RESTORE_DRIVER_KEY>`
/// (`crate::snapshot::report`; pyteleport/restore.py registers its `_drive`).
fn find_restore_driver(d: &mut Decoder<'_>, frames: &[u64]) -> Result<Option<usize>> {
    use crate::process::BuiltinType;
    use crate::snapshot::report::RESTORE_DRIVER_KEY;
    let l = d.py.layout;
    let interp = d.ptr(d.py.runtime_addr + l.runtime_interpreters_head as u64)?;
    let sysdict = d.ptr(interp + l.interp_sysdict as u64)?;
    let mut driver = None;
    for (k, v) in d.dict_entries(sysdict)? {
        if d.is_exact(k, BuiltinType::Str)? && d.read_str(k)?.as_text() == RESTORE_DRIVER_KEY {
            driver = Some(v);
        }
    }
    let Some(driver) = driver else { return Ok(None) };
    for (i, &f) in frames.iter().enumerate() {
        if d.frame_executable(f)? == driver {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The generators in the driver's `pending` list: `[(generator, frame, plan, shift), ...]`.
fn driver_pending(d: &mut Decoder<'_>, frame: u64) -> Result<Vec<u64>> {
    let l = d.py.layout;
    // The local's slot from the code's names, read without decoding the code: nothing of
    // the driver may enter the snapshot.
    let code = d.frame_executable(frame)?;
    let names = d.ptr(code + l.code_localsplusnames as u64)?;
    let count = d.ptr(names + l.var_object_size as u64)?.min(1 << 16);
    let mut slot = None;
    for i in 0..count {
        let name = d.ptr(names + l.tuple_items as u64 + 8 * i)?;
        if d.read_str(name)?.as_text() == crate::snapshot::report::DRIVER_PENDING_LOCAL {
            slot = Some(i);
        }
    }
    let Some(slot) = slot else {
        return Err(Error::corrupt(frame, "restore driver frame without its pending list"));
    };
    let list = d.ptr(frame + l.frame_localsplus as u64 + 8 * slot)?;
    let n = d.ptr(list + l.var_object_size as u64)?.min(1 << 20);
    let items = d.ptr(list + l.list_items as u64)?;
    let mut out = Vec::new();
    for i in 0..n {
        let entry = d.ptr(items + 8 * i)?;
        out.push(d.ptr(entry + l.tuple_items as u64)?);
    }
    Ok(out)
}

/// Interpreter-wide state a resumed program needs besides its frames.
pub struct InterpreterState {
    pub argv: Vec<String>,
    pub sys_path: Vec<String>,
    pub main_module: Option<ObjId>,
    pub recursion_limit: i32,
    /// Input `sys.stdin` has read ahead from its file but not handed to the program.
    pub stdin_pending: Vec<u8>,
    /// Standard streams rebound to other objects (decoded into the graph).
    pub redirected_streams: Vec<(String, ObjId)>,
    /// `sys.executable`: a venv's `bin/python` stays the venv's (not the binary it links to).
    pub executable: Option<String>,
    /// `sys._pyteleport_extras` as left by the shim or attach's in-target work.
    pub extras: Vec<(String, ObjId)>,
}

/// The `sys` attribute where the shim (and attach, inside the target) leave the
/// interpreter state kept outside objects (`_reduce_core.interpreter_extras`).
pub const EXTRAS_KEY: &str = "_pyteleport_extras";

impl InterpreterState {
    /// The snapshot of process `pid`: this state, its executable and working directory,
    /// and the moved thread with its resume plan.
    pub fn into_snapshot(
        self,
        pid: i32,
        python: PyVersion,
        bytecode_magic: [u8; 4],
        graph: ObjectGraph,
        (thread, resume): (ThreadInfo, Vec<FrameResume>),
        other_threads: Vec<OtherThread>,
    ) -> Snapshot {
        let path_text = |p: std::io::Result<std::path::PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        // The program's own interpreter as it was started (a venv's python keeps the venv's
        // prefix and packages, and `subprocess.run([sys.executable, ...])` works after a
        // move), else the binary that runs.
        let executable = self
            .executable
            .filter(|e| std::path::Path::new(e).is_file())
            .unwrap_or_else(|| path_text(ptrace_tools::threads::exe_path(pid).map_err(|e| std::io::Error::other(e.to_string()))));
        Snapshot {
            python,
            bytecode_magic,
            process: ProcessInfo {
                pid,
                executable,
                argv: self.argv,
                sys_path: self.sys_path,
                cwd: path_text(std::fs::read_link(format!("/proc/{pid}/cwd"))),
                recursion_limit: self.recursion_limit,
                stdin_pending: self.stdin_pending,
            },
            graph,
            thread,
            main_module: self.main_module,
            redirected_streams: self.redirected_streams,
            interpreter_extras: self.extras,
            resume,
            other_threads,
        }
    }
}

/// `sys.argv`, `sys.path`, the `__main__` module (decoded into the graph) and the
/// recursion limit of the process's main interpreter.
pub fn read_interpreter_state(d: &mut Decoder<'_>) -> Result<InterpreterState> {
    let py = d.process();
    let l = py.layout;
    let interp = d.ptr(py.runtime_addr + l.runtime_interpreters_head as u64)?;
    let sysdict = d.ptr(interp + l.interp_sysdict as u64)?;
    let mut state = InterpreterState {
        argv: vec![],
        sys_path: vec![],
        main_module: None,
        recursion_limit: 0,
        stdin_pending: vec![],
        redirected_streams: vec![],
        executable: None,
        extras: vec![],
    };
    // Carried like the shim's extras (the restore registers them again, in order).
    if let Some(callbacks) = d.atexit_callbacks(interp)? {
        state.extras.push(("atexit_callbacks".into(), callbacks));
    }
    for (k, v) in d.dict_entries(sysdict)? {
        let key = d.read_str(k)?.as_text().into_owned();
        if key == EXTRAS_KEY && d.is_exact(v, crate::process::BuiltinType::Dict)? {
            for (name, value) in d.dict_entries(v)? {
                if d.is_exact(name, crate::process::BuiltinType::Str)? {
                    let name = d.read_str(name)?.as_text().into_owned();
                    if let Some(id) = d.object(value) {
                        state.extras.push((name, id));
                    }
                }
            }
        }
        if key == "executable" && d.is_exact(v, crate::process::BuiltinType::Str)? {
            state.executable = Some(d.read_str(v)?.as_text().into_owned()).filter(|e| !e.is_empty());
        }
        if key == "argv" || key == "path" {
            let id = d.object(v);
            d.drain()?;
            if let Some(Value::List(items)) = id.map(|i| d.graph.get(i).value.clone()) {
                let strs: Vec<String> = items.iter().filter_map(|&i| d.graph.str_of(i).map(|s| s.into_owned())).collect();
                if key == "argv" {
                    state.argv = strs
                } else {
                    state.sys_path = strs
                }
            }
        }
    }
    let modules = d.ptr(interp + l.interp_modules as u64)?;
    for (k, v) in d.dict_entries(modules)? {
        if d.read_str(k)?.as_text() == "__main__" {
            state.main_module = d.object(v);
        }
    }
    let streams: Vec<(String, u64)> = d
        .dict_entries(sysdict)?
        .into_iter()
        .filter_map(|(k, v)| Some((d.read_str(k).ok()?.as_text().into_owned(), v)))
        .filter(|(k, _)| matches!(k.as_str(), "stdin" | "stdout" | "stderr" | "__stdin__" | "__stdout__" | "__stderr__"))
        .collect();
    for (name, v) in &streams {
        let own = streams.iter().find(|(k, _)| *k == format!("__{name}__")).map(|x| x.1);
        if !name.starts_with("__") && own.is_some_and(|own| own != *v) && *v != py.symbols.none {
            if let Some(id) = d.object(*v) {
                state.redirected_streams.push((name.clone(), id));
            }
        }
    }
    d.drain()?;
    state.recursion_limit = d.ptr(interp + l.interp_recursion_limit as u64)? as u32 as i32;
    state.stdin_pending = d.stdin_read_ahead(sysdict).unwrap_or_default();
    Ok(state)
}

/// Every thread state of the main interpreter: (address, native thread id, where its
/// innermost Python frame is, "qualname (file:line)", or "no Python frame").
pub fn describe_threads(d: &mut Decoder<'_>) -> Result<Vec<(u64, i32, String)>> {
    let l = d.process().layout;
    let mut out = Vec::new();
    for ts in d.thread_states()? {
        let native = d.ptr(ts + l.tstate_native_thread_id as u64)? as i32;
        let chain = d.frame_chain(ts)?;
        let place = match chain.first() {
            Some(&f) => {
                let info = d.read_frame(f, false)?;
                match &d.graph.get(info.code).value {
                    Value::Code(c) => format!("{} ({}:{})", c.qualname, c.filename, info.line.unwrap_or(0)),
                    _ => "?".into(),
                }
            }
            None => "no Python frame".into(),
        };
        out.push((ts, native, place));
    }
    Ok(out)
}

/// A thread besides the moved one, found where it can be carried from.
#[derive(Debug, Clone)]
pub struct RestingThread {
    pub tstate: u64,
    pub native_id: i32,
    pub rest: Rest,
}

/// Where every thread but `moved` (thread states) stands; `registers(native id)` gives a
/// stopped thread's registers. All of them carriable: their list; else the ones that are
/// not, and why.
pub fn threads_at_rest(
    py: &PythonProcess,
    mem: &dyn ptrace_tools::memory::MemoryReader,
    funs: Option<&NativeFunctions>,
    moved: &[u64],
    registers: &dyn Fn(i32) -> Option<libc::user_regs_struct>,
) -> Result<std::result::Result<Vec<RestingThread>, Vec<NotAtRest>>> {
    // A decoder of its own: what it reads must not end up in the snapshot.
    let mut d = Decoder::new(py, mem, Limits::default());
    let l = py.layout;
    let mut resting = Vec::new();
    let mut not = Vec::new();
    let (_, starting) = d.threading_registry()?;
    if starting > 0 {
        not.push(NotAtRest { native_id: 0, name: None, place: "threading".into(), why: format!("{starting} thread(s) are starting") });
    }
    for ts in d.thread_states()? {
        if moved.contains(&ts) {
            continue;
        }
        let native_id = d.ptr(ts + l.tstate_native_thread_id as u64)? as i32;
        let mut chain = d.frame_chain(ts)?;
        split_off_restore_driver(&mut d, &mut chain)?;
        let Some(regs) = registers(native_id) else {
            if chain.is_empty() {
                continue; // a thread state whose thread is gone, with nothing to carry
            }
            not.push(NotAtRest { native_id, name: None, place: "?".into(), why: "its thread is not stopped".into() });
            continue;
        };
        match classify(&mut d, funs, &regs, native_id, &chain)? {
            Ok(Rest::NoPythonFrame) => {}
            Ok(rest) => resting.push(RestingThread { tstate: ts, native_id, rest }),
            Err(n) => not.push(n),
        }
    }
    if !not.is_empty() {
        let names = thread_names(&mut d)?;
        for n in &mut not {
            n.name = names.get(&n.native_id).cloned();
        }
    }
    Ok(if not.is_empty() { Ok(resting) } else { Err(not) })
}

/// Each thread's `threading.Thread` name by native id (`threading._active`, the
/// objects' `_name` and `_native_id`), for messages that name threads as people do.
pub fn thread_names(d: &mut Decoder<'_>) -> Result<HashMap<i32, String>> {
    let (active, _) = d.threading_registry()?;
    let mut names = HashMap::new();
    for (_, thread) in active {
        let (mut name, mut native_id) = (None, None);
        for (k, v) in d.instance_items(thread)? {
            match d.read_str(k).map(|s| s.as_text().into_owned()).ok().as_deref() {
                Some("_name") => name = d.read_str(v).ok().map(|s| s.as_text().into_owned()),
                Some("_native_id") => native_id = d.read_u64_int(v).ok().flatten(),
                _ => {}
            }
        }
        if let (Some(name), Some(native_id)) = (name, native_id) {
            names.insert(native_id as i32, name);
        }
    }
    Ok(names)
}

/// Read the resting threads into the graph, each with its resume plan. The main
/// thread's frames end at the program's `__main__` body (or a restored process's pending
/// frames), the others' at their thread's start.
pub fn read_other_threads(d: &mut Decoder<'_>, resting: &[RestingThread]) -> Result<Vec<OtherThread>> {
    let table = opcode_table(d.py)?;
    let main = d.main_thread_state()?;
    let mut out = Vec::new();
    for t in resting {
        let mut chain = d.frame_chain(t.tstate)?;
        let pending = split_off_restore_driver(d, &mut chain)?;
        let mut thread = d.read_thread_part_between_instructions(t.tstate, Some(t.tstate) == main, &chain)?;
        let Some(innermost) = thread.frames.first_mut() else { continue };
        let code = match &d.graph.get(innermost.code).value {
            Value::Code(c) => c.as_ref().clone(),
            _ => return Err(Error::corrupt(innermost.addr, "frame without code")),
        };
        let (stop, (_, depth)) = match t.rest {
            Rest::RedoCall => (Stop::RedoCall, redo_resume(&code, innermost.lasti, table)?),
            _ => (Stop::BetweenInstructions, between_resume(&code, innermost.lasti, table)?),
        };
        d.restack(innermost, depth as usize)?;
        if stop == Stop::RedoCall {
            with_manager_on_top(d, innermost)?;
        }
        end_with_the_program(d, &mut thread.frames, &pending)?;
        out.push((thread, stop));
    }
    d.drain()?;
    let mut planned = Vec::new();
    for (thread, stop) in out {
        // Planned on the graph as far as it is decoded: the planner reads code objects and
        // the call inputs on the stacks, decoded by now.
        let resume = plan_resume(&d.graph, &thread.frames, table, thread.handled_exception, stop)?;
        planned.push(OtherThread { thread, resume });
    }
    Ok(planned)
}

/// A thread blocked in a `with` statement's `__enter__` (a lock taken by `with lock:`)
/// has already replaced the manager on its stack by the manager's `__exit__`: BEFORE_WITH
/// made again needs the manager itself there.
pub fn with_manager_on_top(d: &mut Decoder<'_>, f: &mut FrameInfo) -> Result<()> {
    d.drain()?;
    let Some(Some(top)) = f.stack.last().copied() else { return Ok(()) };
    if let Value::BuiltinFunction { name, self_: Some(manager), .. } = &d.graph.get(top).value {
        if name == "__exit__" {
            let manager = *manager;
            if let Some(slot) = f.stack.last_mut() {
                *slot = Some(manager);
            }
        }
    }
    Ok(())
}

/// Finish decoding a capture of several threads: each thread gets its `threading.Thread`
/// object (from `threading._active`) and the RLocks it holds (found while decoding).
pub fn finish_threads(mut d: Decoder<'_>, thread: &mut ThreadInfo, others: &mut [OtherThread]) -> Result<ObjectGraph> {
    let (active, _) = d.threading_registry()?;
    let mut all: Vec<&mut ThreadInfo> = std::iter::once(thread).chain(others.iter_mut().map(|o| &mut o.thread)).collect();
    for t in all.iter_mut() {
        if let Some(&(_, addr)) = active.iter().find(|(ident, _)| *ident == t.thread_id) {
            t.thread_object = d.object(addr);
        }
    }
    let (graph, owners) = d.finish_with_rlock_owners()?;
    for (owner, lock, count) in owners {
        if let Some(t) = all.iter_mut().find(|t| t.thread_id == owner) {
            t.held_rlocks.push((lock, count));
        }
    }
    Ok(graph)
}
