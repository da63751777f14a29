//! Reading a whole process: stop it, copy its memory, resume it, decode the copy.

use std::time::{Duration, Instant};

use ptrace_tools::memory::{MemoryReader, ProcessMemory};
use ptrace_tools::stop::StoppedProcess;

use crate::decode::{Decoder, Limits};
use crate::error::Result;
use crate::memcopy::{MemoryCopy, PreparedBuffers};
use crate::process::PythonProcess;
use crate::snapshot::{ObjectGraph, ThreadInfo};

/// Largest writable footprint copied in one pause; bigger processes are decoded live,
/// while stopped.
const MAX_COPY: usize = 8 << 30;

pub struct ProcessState {
    pub py: PythonProcess,
    pub threads: Vec<ThreadInfo>,
    pub graph: ObjectGraph,
    /// How long the target was stopped.
    pub pause: Duration,
    pub copied_bytes: usize,
}

/// Read every thread of `pid`. The target is stopped only while its writable memory is
/// copied, and is resumed on every path (errors and panics included) by `StoppedProcess`.
pub fn read_process(pid: i32, limits: Limits) -> Result<ProcessState> {
    let live = ProcessMemory::new(pid);
    let mut py = PythonProcess::open(pid, &live)?;
    // A thread stopped mid-update (a frame being pushed, an object being built) can make
    // one reading inconsistent: read again from a fresh stop a few times.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_once(pid, &mut py, &live, limits.clone()) {
            Err(crate::Error::Corrupt { .. } | crate::Error::Process(_)) if attempt < 4 && std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                continue
            }
            other => return other.map(|(threads, graph, pause, copied_bytes)| ProcessState { py, threads, graph, pause, copied_bytes }),
        }
    }
}

type Reading = (Vec<ThreadInfo>, ObjectGraph, std::time::Duration, usize);

fn read_once(pid: i32, py: &mut PythonProcess, live: &ProcessMemory, limits: Limits) -> Result<Reading> {
    let prepared = PreparedBuffers::for_maps(&ptrace_tools::maps::read_maps(pid)?, MAX_COPY);
    let stop_started = Instant::now();
    let stopped = StoppedProcess::stop(pid)?;
    py.maps = ptrace_tools::maps::read_maps(pid)?;
    let stack_pointers: Vec<u64> = stopped.threads().iter().filter_map(|&t| stopped.registers(t).ok()).map(|r| r.rsp).collect();
    let copy = MemoryCopy::take_prepared(pid, &py.maps, MAX_COPY, &stack_pointers, prepared);
    let (threads, graph, pause, copied_bytes) = match copy {
        Some(copy) => {
            stopped.resume()?;
            let pause = stop_started.elapsed();
            let copied = copy.copied_bytes;
            let (threads, graph) = decode_all(py, &copy, limits)?;
            (threads, graph, pause, copied)
        }
        None => {
            let decoded = decode_all(py, live, limits);
            stopped.resume()?;
            let (threads, graph) = decoded?;
            (threads, graph, stop_started.elapsed(), 0)
        }
    };
    Ok((threads, graph, pause, copied_bytes))
}

fn decode_all(py: &PythonProcess, mem: &dyn MemoryReader, limits: Limits) -> Result<(Vec<ThreadInfo>, ObjectGraph)> {
    let mut d = Decoder::new(py, mem, limits);
    let mut threads = d.read_threads()?;
    // Like sys._current_frames(): a thread with no Python frame (running only C code,
    // e.g. `_thread.start_new_thread(time.sleep, ...)`) is not listed.
    threads.retain(|t| !t.frames.is_empty());
    // Names are threading's: a thread it does not know has none. Without threading
    // loaded at all, the OS thread name is all there is.
    let names = d.thread_names().unwrap_or_default();
    if !names.is_empty() {
        for t in &mut threads {
            t.name = names.iter().find(|(id, _)| *id == t.thread_id).map(|(_, n)| n.clone());
        }
    }
    let graph = d.finish()?;
    Ok((threads, graph))
}
