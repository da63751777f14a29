//! Typed errors of the library. Human wording that names command-line flags, and exit
//! codes, live at the CLI and shim edges; every variant here says what went wrong and
//! carries the data to say it.

use thiserror::Error;

pub use crate::attach::AttachError;
pub use crate::capture::CaptureError;
pub use crate::launch::LaunchError;
pub use crate::resume::ResumeError;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Process(#[from] ptrace_tools::Error),

    #[error("process {pid} is not a CPython process pyteleport can read: {detail}")]
    NotPython { pid: i32, detail: String },

    #[error("process {pid} runs CPython {version}, which pyteleport does not support (supported: {supported})")]
    UnsupportedVersion { pid: i32, version: String, supported: String },

    #[error("process {pid} runs CPython {version} whose layout differs from pyteleport's table: {detail}")]
    LayoutMismatch { pid: i32, version: String, detail: String },

    #[error("inconsistent interpreter memory at {addr:#x}: {what} (the process may have changed while being read)")]
    Corrupt { addr: u64, what: String },

    #[error("limit exceeded while reading: {0}")]
    Limit(String),

    #[error("thread {0} not found among the interpreter's threads")]
    NoSuchThread(u64),

    /// pyteleport ships no opcode table for the process's version.
    #[error("bytecode: no opcode table for CPython {version}")]
    NoOpcodeTable { version: String },

    #[error(transparent)]
    Format(#[from] crate::snapshot::FormatError),

    /// A frame the planner cannot resume (bytecode it cannot follow, or a frame called
    /// back from C code: a later moment may do).
    #[error(transparent)]
    Resume(ResumeError),

    #[error(transparent)]
    Capture(#[from] CaptureError),

    #[error(transparent)]
    Attach(#[from] AttachError),

    #[error(transparent)]
    Launch(#[from] LaunchError),

    #[error("pyteleport-attach (process {attacher}) was killed: the attach is cancelled and process {pid} goes on untouched")]
    Cancelled { pid: i32, attacher: i32 },

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn corrupt(addr: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { addr, what: what.into() }
    }

    /// The stack cannot be resumed as it stands (a frame called back from C): a later
    /// moment may do.
    pub fn not_resumable(&self) -> Option<&ResumeError> {
        match self {
            Error::Resume(e) if e.is_called_from_c() => Some(e),
            _ => None,
        }
    }
}

/// A frame whose code or instruction is not where memory said is an inconsistent read;
/// anything else the planner refuses is its own kind.
impl From<ResumeError> for Error {
    fn from(e: ResumeError) -> Self {
        match e {
            ResumeError::FrameWithoutCode { addr } => Error::corrupt(addr, "frame without code"),
            ResumeError::NoInstructionInCall { addr, qualname, lasti } => {
                Error::corrupt(addr, format!("{qualname}: no instruction at offset {lasti}"))
            }
            e => Error::Resume(e),
        }
    }
}
