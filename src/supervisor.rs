//! The teleport supervisor: stop the process that asked to be moved, read the asking
//! thread's frames and everything they reach out of memory, and describe how each frame
//! resumes. Spawning the new process is the CLI's job (`cli.rs`).

use ptrace_tools::memory::ProcessMemory;
use ptrace_tools::stop::StoppedProcess;

use crate::bytecode::{self, ExceptionTableEntry};
use crate::error::{Error, Result};
use crate::memcopy::BlockCache;
use crate::decode::{Decoder, Limits};
use crate::snapshot::{CodeInfo, FrameInfo, ObjId, ObjectGraph, StackSource, Value};
use crate::opcodes::{self, OpcodeTable};
use crate::process::PythonProcess;
use crate::snapshot::{FrameResume, ProcessInfo, Snapshot};


#[derive(Debug, Clone)]
pub struct CaptureRequest {
    pub pid: i32,
    /// Native id of the thread that asked.
    pub tid: i32,
    /// Address of the code object of the shim function: it and every frame inside it
    /// belong to pyteleport and are not carried.
    pub shim_code: u64,
}

fn opcode_name(table: &OpcodeTable, op: u8) -> &'static str {
    table.info(op).name
}

/// Resume points for every frame, innermost first.
/// Where a frame stopped *between* instructions (at the eval loop's pending-work check,
/// attach) resumes, and how deep its value stack is there: instructions whose check
/// comes before any effect (RESUME, backward jumps) run again; after a call, the check
/// follows the call and the frame goes on with the next instruction.
pub fn between_resume(code: &CodeInfo, lasti: i64, table: &OpcodeTable) -> Result<(u32, u32)> {
    let instrs = bytecode::try_instructions(&code.code, table).map_err(|e| Error::Bytecode(format!("{}: {e}", code.qualname)))?;
    let mut i = instrs
        .iter()
        .position(|ins| (ins.offset as i64) <= lasti && lasti < (ins.offset + ins.size) as i64)
        .ok_or_else(|| Error::Bytecode(format!("{}: no instruction at offset {lasti}", code.qualname)))?;
    // 3.11: a specialized PRECALL makes the call and skips CALL before its check.
    if opcode_name(table, instrs[i].opcode) == "PRECALL" && i + 1 < instrs.len() {
        i += 1;
    }
    let current = &instrs[i];
    let resume = match opcode_name(table, current.opcode) {
        "RESUME" | "JUMP_BACKWARD" | "JUMP_BACKWARD_NO_INTERRUPT" => current.offset,
        // 3.11's conditional backward jumps check for pending work only once the jump
        // is taken (the condition already popped): go on at the loop's top.
        "POP_JUMP_BACKWARD_IF_TRUE" | "POP_JUMP_BACKWARD_IF_FALSE" | "POP_JUMP_BACKWARD_IF_NONE" | "POP_JUMP_BACKWARD_IF_NOT_NONE" => current
            .exec_jump_target(table)
            .ok_or_else(|| Error::Bytecode(format!("{}: backward jump without a target", code.qualname)))?,
        _ => current.offset + current.size,
    };
    let entries = bytecode::try_parse_exception_table(&code.exceptiontable).map_err(|e| Error::Bytecode(e.to_string()))?;
    let depths = bytecode::stack_depths(&code.code, &entries, table).map_err(|e| Error::Bytecode(format!("{}: {e}", code.qualname)))?;
    let depth = depths.get(resume as usize).copied().flatten().ok_or_else(|| Error::Bytecode(format!("{}: no stack depth at {resume}", code.qualname)))?;
    Ok((resume, depth))
}

/// Resume points for every frame, innermost first. `between`: the innermost frame was
/// stopped between instructions (attach) rather than inside a call to the shim.
pub fn plan_resume(graph: &ObjectGraph, frames: &[FrameInfo], table: &OpcodeTable, thread_exc: Option<ObjId>, between: bool) -> Result<Vec<FrameResume>> {
    let mut out: Vec<FrameResume> = Vec::with_capacity(frames.len());
    let mut inner_exc = thread_exc;
    for (k, f) in frames.iter().enumerate() {
        let Value::Code(code) = &graph.get(f.code).value else { return Err(Error::corrupt(f.addr, "frame without code")) };
        if k == 0 && between {
            let (resume, keep) = between_resume(code, f.lasti, table)?;
            if keep as usize > f.stack.len() {
                return Err(Error::Bytecode(format!("{}: value stack of {} entries, needs {keep}", code.qualname, f.stack.len())));
            }
            out.push(FrameResume { resume, keep, for_iter: None, exc_value: thread_exc, init_self: None, push: false });
            continue;
        }
        let instrs = bytecode::try_instructions(&code.code, table).map_err(|e| Error::Bytecode(format!("{}: {e}", code.qualname)))?;
        let mut i = instrs
            .iter()
            .position(|ins| (ins.offset as i64) <= f.lasti && f.lasti < (ins.offset + ins.size) as i64)
            .ok_or_else(|| Error::corrupt(f.addr, format!("{}: no instruction at offset {}", code.qualname, f.lasti)))?;
        // 3.11: a specialized PRECALL performs the call itself; the frame resumes after CALL.
        if opcode_name(table, instrs[i].opcode) == "PRECALL" && i + 1 < instrs.len() {
            i += 1;
        }
        let current = &instrs[i];
        let name = opcode_name(table, current.opcode);
        let resume = current.offset + current.size;
        let entries = bytecode::try_parse_exception_table(&code.exceptiontable).map_err(|e| Error::Bytecode(e.to_string()))?;
        let depths = bytecode::stack_depths(&code.code, &entries, table).map_err(|e| Error::Bytecode(format!("{}: {e}", code.qualname)))?;
        let after = depths.get(resume as usize).copied().flatten().ok_or_else(|| {
            Error::Bytecode(format!("{} line {:?}: no stack depth after offset {}", code.qualname, f.line, current.offset * 2))
        })?;
        let keep = after.checked_sub(1).ok_or_else(|| Error::Bytecode(format!("{}: empty stack after the call", code.qualname)))?;
        if keep as usize > f.stack.len() {
            return Err(Error::Bytecode(format!(
                "{} line {:?}: stopped in {name} with {} stack entries, needs {keep}",
                code.qualname,
                f.line,
                f.stack.len()
            )));
        }
        let for_iter = (name == "FOR_ITER").then_some(current.offset);
        let init_self = match k {
            0 => None,
            _ if frames[k - 1].through_init_cleanup => frames[k - 1].localsplus.first().copied().flatten(),
            _ => init_instance(graph, &frames[k - 1], f, current.arg as usize),
        };
        if k > 0 && f.stack_from != StackSource::Stacktop && init_self.is_none() {
            check_called_directly(graph, &frames[k - 1], f, name, current.arg as usize, code, table)?;
        }
        let exc_value = if k == 0 { thread_exc } else { inner_exc };
        // What the next frame out sees: the exception this frame saved when it entered
        // its handler, if it is inside one; otherwise what this frame sees.
        inner_exc = match saved_exception(code, &entries, f, table, current.offset) {
            Some(saved) => saved,
            None => exc_value,
        };
        out.push(FrameResume { resume, keep, for_iter, exc_value, init_self, push: true });
    }
    Ok(out)
}

/// A frame that reached its callee through C code (its stack pointer was not saved) is
/// resumable only when the C layer is transparent: a Python function or bound method
/// called through C (`f(*args)`), a generator advanced by `for`, `next()` or `yield from`.
/// Anything else (`sorted(key=f)`, `map(f, ...)`, callbacks) would lose what the C code
/// does after the inner frame returns: refuse it, naming both frames.
fn check_called_directly(graph: &ObjectGraph, inner: &FrameInfo, outer: &FrameInfo, op: &str, nargs: usize, outer_code: &CodeInfo, _table: &OpcodeTable) -> Result<()> {
    let Value::Code(inner_code) = &graph.get(inner.code).value else { return Ok(()) };
    let describe = |c: &CodeInfo, f: &FrameInfo| format!("{} ({}:{})", c.qualname, c.filename, f.line.unwrap_or(0));
    if inner.generator.is_some() && matches!(op, "FOR_ITER" | "SEND" | "YIELD_FROM") {
        return Ok(());
    }
    // The callable's possible slots, by how each call instruction lays out its inputs.
    let len = outer.stack.len();
    let back: Vec<usize> = match op {
        "CALL" | "PRECALL" => vec![nargs + 2, nargs + 1],
        "CALL_KW" => vec![nargs + 3, nargs + 2],
        "CALL_FUNCTION_EX" => vec![2 + (nargs & 1), 3 + (nargs & 1)],
        _ => vec![],
    };
    let inputs: Vec<ObjId> = back.iter().filter_map(|&b| len.checked_sub(b)).filter_map(|i| outer.stack.get(i).copied().flatten()).collect();
    let runs_inner = |id: ObjId| -> bool {
        match &graph.get(id).value {
            Value::Function { code, .. } => *code == inner.code,
            Value::Method { func, .. } => matches!(&graph.get(*func).value, Value::Function { code, .. } if *code == inner.code),
            Value::BuiltinFunction { name, self_: None, .. } => name == "next" && inner.generator.is_some(),
            // `gen.send(value)` resumes the generator like `next(gen)` does.
            Value::BuiltinFunction { name, self_: Some(owner), .. } => {
                matches!(name.as_str(), "send" | "__next__") && inner.generator == Some(*owner)
            }
            _ => false,
        }
    };
    // `gen.send(v)` (a method of the generator itself, which sits in the self slot) resumes
    // the generator like `next(gen)` does.
    let method_of_inner_generator = inner.generator.is_some_and(|g| inputs.contains(&g));
    if method_of_inner_generator || inputs.iter().any(|&id| runs_inner(id)) {
        return Ok(());
    }
    let callee = inputs
        .iter()
        .rev()
        .find(|&&id| !matches!(graph.get(id).value, Value::None | Value::Int { .. } | Value::Str(_)))
        .map(|&id| crate::repr::repr(graph, id))
        .unwrap_or_else(|| "C code".into());
    Err(Error::NotResumable(format!(
        "{} is called from C code ({callee}) in {}: a frame called back from C cannot be resumed",
        describe(inner_code, inner),
        describe(outer_code, outer)
    )))
}

/// `inner` is an `__init__` called by `outer` instantiating a class: the instance.
fn init_instance(graph: &ObjectGraph, inner: &FrameInfo, outer: &FrameInfo, nargs: usize) -> Option<ObjId> {
    let Value::Code(code) = &graph.get(inner.code).value else { return None };
    if code.name != "__init__" {
        return None;
    }
    let instance = (*inner.localsplus.first()?)?;
    let class = graph.get(instance).type_id?;
    // The class is among the call's inputs at the top of the caller's stack.
    let inputs = outer.stack.iter().rev().take(nargs + 3);
    inputs.flatten().any(|&v| v == class).then_some(instance)
}

/// If the frame is inside an `except` handler, the exception that was current before the
/// outermost such handler was entered (saved on the stack by PUSH_EXC_INFO): what the
/// caller sees once this frame returns. `Some(None)`: the saved slot holds None/NULL.
fn saved_exception(code: &CodeInfo, entries: &[ExceptionTableEntry], f: &FrameInfo, table: &OpcodeTable, at: u32) -> Option<Option<ObjId>> {
    let instrs = bytecode::instructions(&code.code, table);
    let mut saved = None;
    let mut at = at;
    // Follow handlers outward. A cleanup's code lies in the enclosing region; a try (or
    // with) body's handler (PUSH_EXC_INFO) starts under its own cleanup, which is not a
    // region we are in.
    let mut entering_handler = false;
    for _ in 0..64 {
        let Some(entry) = bytecode::handler_for(entries, at) else { break };
        let Some(target) = instrs.iter().position(|i| i.offset == entry.target) else { break };
        // Handler cleanups start COPY 3; POP_EXCEPT: the covering entry's depth counts the
        // saved exception as its top item.
        let is_cleanup = opcode_name(table, instrs[target].opcode) == "COPY"
            && instrs.get(target + 1).map(|i| opcode_name(table, i.opcode)) == Some("POP_EXCEPT");
        if is_cleanup && !entering_handler && entry.depth > 0 {
            saved = f.stack.get(entry.depth as usize - 1).copied();
        }
        entering_handler = opcode_name(table, instrs[target].opcode) == "PUSH_EXC_INFO";
        if entry.target == at {
            break;
        }
        at = entry.target;
    }
    saved
}

/// Stop `req.pid`, read the asking thread, resume it. The target is resumed on every path.
/// Asks the process being captured to reduce objects the reader cannot rebuild (the
/// pickle protocol, run by the shim): given their addresses, returns for each the address
/// of a list of `(callable, args, state, listitems, dictitems)` tuples, one per object,
/// kept alive by the shim.
pub type Reducer<'a> = &'a mut dyn FnMut(&[u64]) -> std::result::Result<u64, String>;

/// Rounds of reduction: a reduce result may hold objects needing their own (a numpy
/// array's dtype).
const MAX_REDUCE_ROUNDS: usize = 8;

/// Stop `req.pid`, read the asking thread, resume it. The target is resumed on every path.
/// Objects the reader cannot rebuild are handed to `reducer` when there is one, then the
/// state is read again; without one (or when it fails) the capture is refused.
pub fn capture(req: &CaptureRequest, mut reducer: Option<Reducer<'_>>) -> Result<(Snapshot, Vec<FrameResume>)> {
    let live = ProcessMemory::new(req.pid);
    let clock = crate::timing::Clock::start("capture");
    let mut py = PythonProcess::open(req.pid, &live)?;
    clock.mark("interpreter located");
    let mut substitutions = rustc_hash::FxHashMap::default();
    for round in 0.. {
        // The asking thread waits in the shim for us anyway: read while the process is
        // stopped, through a block cache, rather than copying all its memory first (what
        // is read is usually a small part of it; a 100 MB object is read once, in place).
        let stopped = StoppedProcess::stop(req.pid)?;
        py.maps = ptrace_tools::maps::read_maps(req.pid)?;
        clock.mark("stopped");
        let cache = BlockCache::new(req.pid);
        let read = read_thread_for_teleport(&py, &cache, req, &substitutions);
        stopped.resume()?;
        clock.mark("decoded and resumed");
        let (snap, resume) = read?;
        let opaque = uncarriable(&snap.graph);
        if opaque.is_empty() {
            return Ok((snap, resume));
        }
        let Some(reduce) = reducer.as_mut().filter(|_| round < MAX_REDUCE_ROUNDS) else {
            refuse_uncarriable(&snap.graph, &snap.thread.frames, true)?;
            unreachable!("refuse_uncarriable errs when objects are uncarriable");
        };
        let addrs: Vec<u64> = opaque.iter().map(|&id| snap.graph.get(id).addr).collect();
        let results = reduce(&addrs).and_then(|list| read_list(&py, &live, list).map_err(|e| e.to_string()));
        match results {
            Ok(results) if results.len() == addrs.len() => {
                for (a, r) in addrs.into_iter().zip(results) {
                    substitutions.insert(a, r);
                }
            }
            Ok(_) => return Err(Error::Snapshot("the shim answered a reduce request with the wrong number of results".into())),
            Err(reason) => {
                let (id, name) = opaque.first().map(|&id| (id, type_name(&snap.graph, id))).unwrap_or((0, String::new()));
                let place = holder(&snap.graph, &snap.thread.frames, id);
                return Err(Error::Snapshot(format!("cannot carry the {name} object reached from {place}: {reason}")));
            }
        }
    }
    unreachable!("the loop returns")
}

/// Item addresses of a list object.
fn read_list(py: &PythonProcess, mem: &dyn ptrace_tools::memory::MemoryReader, list: u64) -> Result<Vec<u64>> {
    let l = py.layout;
    let n = mem.read_u64(list + l.var_object_size as u64)?.min(1 << 24);
    let items = mem.read_u64(list + l.list_items as u64)?;
    (0..n).map(|i| Ok(mem.read_u64(items + 8 * i)?)).collect()
}

/// Nodes the restore engine cannot rebuild.
fn uncarriable(graph: &ObjectGraph) -> Vec<ObjId> {
    (0..graph.objects.len() as ObjId).filter(|&id| matches!(graph.get(id).value, Value::Opaque)).collect()
}

fn type_name(graph: &ObjectGraph, id: ObjId) -> String {
    graph.type_info(id).map(|t| if t.module == "builtins" { t.qualname.clone() } else { format!("{}.{}", t.module, t.qualname) }).unwrap_or_else(|| "?".into())
}

/// The frame holding `id` directly, else the innermost frame, as "qualname (file:line)".
fn holder(graph: &ObjectGraph, frames: &[FrameInfo], id: ObjId) -> String {
    let f = frames.iter().find(|f| f.localsplus.contains(&Some(id)) || f.stack.contains(&Some(id))).or(frames.first());
    f.and_then(|f| match &graph.get(f.code).value {
        Value::Code(c) => Some(format!("{} ({}:{})", c.qualname, c.filename, f.line.unwrap_or(0))),
        _ => None,
    })
    .unwrap_or_default()
}

fn read_thread_for_teleport(
    py: &PythonProcess,
    mem: &dyn ptrace_tools::memory::MemoryReader,
    req: &CaptureRequest,
    substitutions: &rustc_hash::FxHashMap<u64, u64>,
) -> Result<(Snapshot, Vec<FrameResume>)> {
    // A teleport carries everything: bounds only against a corrupt heap.
    let limits = Limits { module_dicts: vec!["__main__".into()], deep: true, max_objects: 100_000_000, max_len: 1 << 34, max_bytes: 1 << 36 };
    let mut d = Decoder::new(py, mem, limits);
    d.substitutions = substitutions.clone();
    d.learn_stdio()?;
    let l = py.layout;
    let mut tstate = None;
    for t in d.thread_states()? {
        if d.ptr(t + l.tstate_native_thread_id as u64)? as i32 == req.tid {
            tstate = Some(t);
        }
    }
    let tstate = tstate.ok_or(Error::NoSuchThread(req.tid as u64))?;
    // Find pyteleport's own frames by their code object before reading anything else, so
    // nothing they reference ends up in the snapshot.
    let chain = d.frame_chain(tstate)?;
    let mut shim = None;
    for (i, &f) in chain.iter().enumerate() {
        if d.ptr(f + l.frame_executable as u64)? == req.shim_code {
            shim = Some(i);
        }
    }
    let shim = shim.ok_or_else(|| Error::Snapshot("the teleport call was not found on the calling thread's stack".into()))?;
    let mut user_frames = chain[shim + 1..].to_vec();
    // In a process that is itself a restore, the frames outside the running one wait as
    // entered generators in the restore driver's `pending` list; the driver and what is
    // below it are pyteleport's.
    let mut pending_gens = Vec::new();
    if let Some(pos) = find_restore_driver(&mut d, &user_frames)? {
        pending_gens = driver_pending(&mut d, user_frames[pos])?;
        user_frames.truncate(pos);
    }
    if user_frames.is_empty() {
        return Err(Error::Snapshot("nothing to carry: the teleport call has no Python caller".into()));
    }
    let mut thread = d.read_thread_frames(tstate, &user_frames)?;
    // The program ends with its `__main__` module body: what calls it (runpy for
    // `python -m`) is the interpreter's start-up, not part of the program.
    if let Some(pos) = main_body_position(&mut d, &thread.frames)? {
        thread.frames.truncate(pos + 1);
        pending_gens.clear();
    }
    for gen in pending_gens {
        let mut f = d.read_frame(gen + l.gen_iframe as u64, true)?;
        // Entered frames point at their next instruction: 3.11/3.12 keep the unit before
        // it (prev_instr), 3.13 the instruction itself. Plan from the unit before.
        if l.frame_instr_ptr.is_some() {
            f.lasti -= 1;
        }
        thread.frames.push(f);
    }
    let carried = read_interpreter_state(&mut d)?;
    let graph = d.finish()?;
    refuse_uncarriable(&graph, &thread.frames, false)?;
    let table = opcodes::table_for(py.version.major, py.version.minor).ok_or_else(|| Error::Bytecode("no opcode table".into()))?;
    let resume = plan_resume(&graph, &thread.frames, table, thread.handled_exception, false)?;
    let snap = carried.into_snapshot(req.pid, py.version, table.magic, graph, thread, resume.clone());
    Ok((snap, resume))
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
}

impl InterpreterState {
    /// The snapshot of process `pid`: this state, its executable and working directory,
    /// and the moved thread with its resume plan.
    pub fn into_snapshot(self, pid: i32, python: crate::process::PyVersion, bytecode_magic: [u8; 4], graph: ObjectGraph, thread: crate::snapshot::ThreadInfo, resume: Vec<FrameResume>) -> Snapshot {
        let path_text = |p: std::io::Result<std::path::PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        Snapshot {
            python,
            bytecode_magic,
            process: ProcessInfo {
                pid,
                executable: path_text(ptrace_tools::threads::exe_path(pid).map_err(|e| std::io::Error::other(e.to_string()))),
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
            resume,
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
    let mut state = InterpreterState { argv: vec![], sys_path: vec![], main_module: None, recursion_limit: 0, stdin_pending: vec![], redirected_streams: vec![] };
    for (k, v) in d.dict_entries(sysdict)? {
        let key = d.read_str(k)?.as_text().into_owned();
        if key == "argv" || key == "path" {
            let id = d.object(v);
            d.drain()?;
            if let Some(Value::List(items)) = id.map(|i| d.graph.get(i).value.clone()) {
                let strs: Vec<String> = items.iter().filter_map(|&i| d.graph.str_of(i).map(|s| s.into_owned())).collect();
                if key == "argv" { state.argv = strs } else { state.sys_path = strs }
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
    state.stdin_pending = stdin_read_ahead(d, sysdict).unwrap_or_default();
    Ok(state)
}

/// What `sys.stdin` (a TextIOWrapper over a BufferedReader) holds that the program has
/// not read yet: the rest of the decoded text chunk, then the binary buffer's unread
/// bytes. The file itself is already past them, so the new process must get them first.
fn stdin_read_ahead(d: &mut Decoder<'_>, sysdict: u64) -> Result<Vec<u8>> {
    let l = d.process().layout;
    let mut out = Vec::new();
    let Some(stdin) = d.dict_entries(sysdict)?.into_iter().find_map(|(k, v)| (d.read_str(k).ok()?.as_text() == "stdin").then_some(v)) else {
        return Ok(out);
    };
    let type_name_of = |d: &mut Decoder<'_>, obj: u64| -> Result<String> {
        let t = d.ptr(obj + l.object_type as u64)?;
        let name = d.ptr(t + l.type_name as u64)?;
        d.c_string(name, 64)
    };
    if type_name_of(d, stdin)? != "_io.TextIOWrapper" {
        return Ok(out);
    }
    let chars = d.ptr(stdin + l.textio_decoded_chars as u64)?;
    if chars != 0 {
        let used = d.ptr(stdin + l.textio_decoded_chars_used as u64)? as usize;
        let text = d.read_str(chars)?.code_points();
        let rest: String = text.iter().skip(used).filter_map(|&c| char::from_u32(c)).collect();
        out.extend(rest.as_bytes());
    }
    let buffered = d.ptr(stdin + l.textio_buffer as u64)?;
    if type_name_of(d, buffered)? == "_io.BufferedReader" {
        let (pos, end) = (d.ptr(buffered + l.buffered_pos as u64)? as i64, d.ptr(buffered + l.buffered_read_end as u64)? as i64);
        if end > pos && pos >= 0 && end - pos < (64 << 20) {
            let buf = d.ptr(buffered + l.buffered_buffer as u64)?;
            out.extend(d.read(buf + pos as u64, (end - pos) as usize)?);
        }
    }
    Ok(out)
}

/// Refuse, before anything is written, a state holding objects the restore engine cannot
/// rebuild (C types without a decoder). Names the object's type and the frame holding it.
fn refuse_uncarriable(graph: &ObjectGraph, frames: &[FrameInfo], opaque_too: bool) -> Result<()> {
    for (id, obj) in graph.objects.iter().enumerate() {
        let reason = match &obj.value {
            Value::Opaque if opaque_too => "pyteleport has no way to rebuild objects of this type".to_string(),
            Value::Unread(why) => why.clone(),
            _ => continue,
        };
        let id = id as ObjId;
        return Err(Error::Snapshot(format!(
            "cannot carry the {} object at {:#x} reached from {}: {reason}",
            type_name(graph, id),
            obj.addr,
            holder(graph, frames, id)
        )));
    }
    Ok(())
}

/// Position of pyteleport's restore driver (`_drive` in pyteleport/restore.py) among the
/// frames, innermost first.
fn find_restore_driver(d: &mut Decoder<'_>, frames: &[u64]) -> Result<Option<usize>> {
    for (i, &f) in frames.iter().enumerate() {
        let Some((_, code)) = d.frame_code(f)? else { continue };
        if let Value::Code(c) = &d.graph.get(code).value {
            if c.qualname == "_drive" && c.filename.ends_with("pyteleport/restore.py") {
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

/// The generators in the driver's `pending` list: `[(generator, frame, plan, shift), ...]`.
fn driver_pending(d: &mut Decoder<'_>, frame: u64) -> Result<Vec<u64>> {
    let l = d.py.layout;
    let Some((_, code)) = d.frame_code(frame)? else { return Ok(vec![]) };
    let Value::Code(c) = &d.graph.get(code).value else { return Ok(vec![]) };
    let Some(slot) = c.localsplus_names.iter().position(|n| n == "pending") else {
        return Err(Error::Snapshot("restore driver without a pending list".into()));
    };
    let list = d.ptr(frame + l.frame_localsplus as u64 + 8 * slot as u64)?;
    let n = d.ptr(list + l.var_object_size as u64)?.min(1 << 20);
    let items = d.ptr(list + l.list_items as u64)?;
    let mut out = Vec::new();
    for i in 0..n {
        let entry = d.ptr(items + 8 * i)?;
        out.push(d.ptr(entry + l.tuple_items as u64)?);
    }
    Ok(out)
}
