//! The teleport supervisor: stop the process that asked to be moved, read the asking
//! thread's frames (up to the shim's call) and everything they reach out of memory, and
//! plan how each frame resumes (`resume`). What attach shares with it is in `capture`;
//! delivering the snapshot is `teleport`'s job.

use ptrace_tools::memory::ProcessMemory;
use ptrace_tools::stop::StoppedProcess;

use crate::capture::{
    carry_everything, end_with_the_program, finish_threads, opcode_table, read_interpreter_state, read_other_threads, split_off_restore_driver,
    threads_at_rest, CaptureError,
};
use crate::decode::Decoder;
use crate::error::{Error, Result};
use crate::memcopy::BlockCache;
use crate::process::PythonProcess;
use crate::resume::{plan_resume, Stop};
use crate::snapshot::{FrameInfo, FrameResume, ObjId, ObjectGraph, Snapshot, Value};
use crate::thread_rest::NativeFunctions;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CaptureRequest {
    pub pid: i32,
    /// Native id of the thread that asked.
    pub tid: i32,
    /// Address of the code object of the shim function: it and every frame inside it
    /// belong to pyteleport and are not carried.
    pub shim_code: u64,
}

/// Stop `req.pid`, read the asking thread, resume it. The target is resumed on every path.
/// Asks the process being captured to reduce objects the reader cannot rebuild (the
/// pickle protocol, run by the shim): given their addresses, returns for each the address
/// of a list of `(callable, args, state, listitems, dictitems)` tuples, one per object,
/// kept alive by the shim. Asked with no address, it lets the process's other threads run
/// a moment (one of them was not where it can be carried from) and answers 0.
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
    py.require_movable()?;
    clock.mark("interpreter located");
    let mut substitutions = rustc_hash::FxHashMap::default();
    let functions = NativeFunctions::locate(&py);
    let threads_deadline = Instant::now() + thread_wait();
    let mut round = 0;
    loop {
        // The asking thread waits in the shim for us anyway: read while the process is
        // stopped, through a block cache, rather than copying all its memory first (what
        // is read is usually a small part of it; a 100 MB object is read once, in place).
        let stopped = StoppedProcess::stop(req.pid)?;
        py.maps = ptrace_tools::maps::read_maps(req.pid)?;
        clock.mark("stopped");
        let cache = BlockCache::new(req.pid);
        let read = read_thread_for_teleport(&py, &cache, req, &substitutions, &stopped, functions.as_ref());
        stopped.resume()?;
        clock.mark("decoded and resumed");
        let (snap, resume) = match read {
            Err(Error::Capture(CaptureError::ThreadsNotAtRest { .. })) if Instant::now() < threads_deadline && reducer.is_some() => {
                let settle = reducer.as_mut().expect("checked above");
                settle(&[]).map_err(|reason| CaptureError::NotReduced { type_name: "thread".into(), holder: "another thread".into(), reason })?;
                continue;
            }
            read => read?,
        };
        let opaque = uncarriable(&snap.graph);
        if opaque.is_empty() {
            return Ok((snap, resume));
        }
        round += 1;
        let Some(reduce) = reducer.as_mut().filter(|_| round <= MAX_REDUCE_ROUNDS) else {
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
            Ok(results) => return Err(CaptureError::ReduceAnswer { asked: addrs.len(), answered: results.len() }.into()),
            Err(reason) => {
                let (id, type_name) = opaque.first().map(|&id| (id, type_name(&snap.graph, id))).unwrap_or((0, String::new()));
                let holder = holder(&snap.graph, &snap.thread.frames, id);
                return Err(CaptureError::NotReduced { type_name, holder, reason }.into());
            }
        }
    }
}

/// How long the other threads may take to come where they can be carried from
/// (`PYTELEPORT_THREAD_TIMEOUT`, seconds; default 10).
fn thread_wait() -> Duration {
    std::env::var("PYTELEPORT_THREAD_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Item addresses of a list object.
pub(crate) fn read_list(py: &PythonProcess, mem: &dyn ptrace_tools::memory::MemoryReader, list: u64) -> Result<Vec<u64>> {
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
    graph
        .type_info(id)
        .map(|t| if t.module == "builtins" { t.qualname.clone() } else { format!("{}.{}", t.module, t.qualname) })
        .unwrap_or_else(|| "?".into())
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
    stopped: &StoppedProcess,
    functions: Option<&NativeFunctions>,
) -> Result<(Snapshot, Vec<FrameResume>)> {
    let mut d = Decoder::new(py, mem, carry_everything());
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
    // Every other thread moves too, each from a point of its own (see `thread_rest`);
    // one that is not at such a point now is waited for (the caller lets it run).
    let registers = |tid: i32| stopped.registers(tid).ok();
    let resting = match threads_at_rest(py, mem, functions, &[tstate], &registers)? {
        Ok(resting) => resting,
        Err(not) => {
            let threads = not.into_iter().map(|n| (n.who(), n.place, n.why)).collect();
            return Err(CaptureError::ThreadsNotAtRest { threads, waited: thread_wait() }.into());
        }
    };
    // Find pyteleport's own frames by their code object before reading anything else, so
    // nothing they reference ends up in the snapshot.
    let chain = d.frame_chain(tstate)?;
    let mut shim = None;
    for (i, &f) in chain.iter().enumerate() {
        if d.frame_executable(f)? == req.shim_code {
            shim = Some(i);
        }
    }
    let shim = shim.ok_or(CaptureError::ShimCallNotFound)?;
    let mut user_frames = chain[shim + 1..].to_vec();
    // In a process that is itself a restore, the frames outside the running one wait as
    // entered generators in the restore driver's `pending` list; the driver and what is
    // below it are pyteleport's.
    let pending_gens = split_off_restore_driver(&mut d, &mut user_frames)?;
    if user_frames.is_empty() {
        return Err(CaptureError::NoPythonCaller.into());
    }
    let mut thread = d.read_thread_frames(tstate, &user_frames)?;
    thread.is_main = req.tid == req.pid;
    thread.name = ptrace_tools::threads::thread_name(req.pid, req.tid);
    end_with_the_program(&mut d, &mut thread.frames, &pending_gens)?;
    let mut others = read_other_threads(&mut d, &resting)?;
    let carried = read_interpreter_state(&mut d)?;
    let graph = finish_threads(d, &mut thread, &mut others)?;
    refuse_uncarriable(&graph, &thread.frames, false)?;
    let table = opcode_table(py)?;
    let resume = plan_resume(&graph, &thread.frames, table, thread.handled_exception, Stop::InCall)?;
    let snap = carried.into_snapshot(req.pid, py.version, table.magic, graph, (thread, resume.clone()), others);
    Ok((snap, resume))
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
        return Err(CaptureError::Uncarriable { type_name: type_name(graph, id), addr: obj.addr, holder: holder(graph, frames, id), reason }.into());
    }
    Ok(())
}
