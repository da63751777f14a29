//! Typed errors for every operation of this crate.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while stopping, reading or inspecting a process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: i32 },

    #[error("permission denied for process {pid}: {detail}")]
    PermissionDenied { pid: i32, detail: String },

    #[error("process {pid} exited while it was being inspected")]
    ProcessExited { pid: i32 },

    #[error("cannot read {len} bytes at {addr:#x} from the target process: {source}")]
    MemoryRead {
        addr: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {len} bytes at {addr:#x} in the target process: {source}")]
    MemoryWrite {
        addr: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },

    #[error("ptrace {op} on thread {pid} failed: {errno} ({})", errno.desc())]
    Ptrace { pid: i32, op: &'static str, errno: Errno },

    /// Some threads did not reach a ptrace-stop in time (e.g. stuck in
    /// uninterruptible sleep, or a vfork parent waiting for its child).
    #[error("timed out after {waited_ms} ms waiting for threads {tids:?} of process {pid} to stop")]
    StopTimeout { pid: i32, tids: Vec<i32>, waited_ms: u64 },

    #[error("ELF file {}: {detail}", path.display())]
    Elf { path: PathBuf, detail: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// True when the error means the target (or the thread) is gone, as
    /// opposed to a problem with our request.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::NoSuchProcess { .. } | Error::ProcessExited { .. })
    }
}

/// Map an I/O error about `/proc/<pid>/...` to the typed error a caller wants.
pub(crate) fn proc_io_error(pid: i32, context: String, err: std::io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
        Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied { pid, detail: format!("{context}: {err}") },
        _ => Error::io(context, err),
    }
}

/// Reject pids that would address process groups or nothing at all
/// (0 and negative values have special meanings for kill(2) and friends).
pub(crate) fn check_pid(pid: i32) -> Result<()> {
    if pid <= 0 {
        Err(Error::NoSuchProcess { pid })
    } else {
        Ok(())
    }
}
