//! Typed errors of the interpreter layer. Human wording lives at the CLI and shim edges,
//! but every variant already says what went wrong and where.

use thiserror::Error;

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

    #[error("bytecode: {0}")]
    Bytecode(String),

    #[error("{0}")]
    Snapshot(String),

    #[error(transparent)]
    Format(#[from] crate::snapshot::FormatError),

    /// The stack holds a frame that cannot be resumed as it stands (called back from C
    /// code): a later moment may do.
    #[error("{0}")]
    NotResumable(String),

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
}
