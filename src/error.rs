//! Typed errors of the library. Human wording that names command-line flags, and exit
//! codes, live at the CLI and shim edges; every variant here says what went wrong and
//! carries the data to say it.

use thiserror::Error;

use std::path::PathBuf;
use std::time::Duration;

use crate::bytecode::BytecodeError;

#[derive(Debug, Error)]
pub enum Error {
    /// The snapshot did not reach a new process that rebuilt it; the program goes on.
    #[error("{0}")]
    Delivery(String),
    #[error(transparent)]
    Process(#[from] ptrace_tools::Error),

    #[error("process {pid} is not a CPython process pyteleport can read: {detail}")]
    NotPython { pid: i32, detail: String },

    #[error("process {pid} runs CPython {version}, which pyteleport does not support (supported: {supported})")]
    UnsupportedVersion { pid: i32, version: String, supported: String },

    #[error("process {pid} runs CPython {version}, which pyteleport can read (dump) but not yet move (teleport and attach support: {movable})")]
    ReadOnlyVersion { pid: i32, version: String, movable: String },

    #[error("process {pid} runs a free-threaded build of CPython {version} (no GIL), which pyteleport does not support")]
    FreeThreaded { pid: i32, version: String },

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
    Format(#[from] FormatError),

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

    #[error(transparent)]
    File(#[from] FileError),

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

// Error kinds of each part of the library, defined here (this module depends on no
// other of the crate but the pure bytecode analyses) and re-exported where they belong.

/// Why a file is not a snapshot this pyteleport can restore.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("too short to be a snapshot ({0} bytes)")]
    TooShort(usize),
    #[error("not a pyteleport snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format {found}, this pyteleport reads format {expected}")]
    Version { found: u32, expected: u32 },
    #[error("truncated or padded: body is {actual} bytes, header says {declared}")]
    Length { actual: u64, declared: u64 },
    #[error("checksum mismatch: the file is corrupt")]
    Checksum,
    #[error("cannot decode body: {0}")]
    Decode(String),
    #[error("trailing bytes after the body")]
    Trailing,
    #[error("{0}")]
    Key(String),
    #[error("not enough memory to restore it: decoding needs about {} MB, the address-space limit leaves {} MB", need >> 20, left >> 20)]
    NotEnoughMemory { need: u64, left: u64 },
    #[error("the snapshot carries no authentication tag, and a key is set (PYTELEPORT_KEY_FILE): refused")]
    Unauthenticated,
    #[error("the snapshot's authentication tag does not verify under the key: it was altered or made with another key; refused")]
    BadTag,
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("inconsistent snapshot: {0}")]
    Invalid(#[from] Invalid),
}

/// What is wrong with a snapshot whose bytes decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{place} refers to object {id}, but the snapshot holds only {count} objects")]
    IdOutOfRange { place: String, id: u32, count: usize },
    #[error("{place} must be a code object, but object {id} is not one")]
    NotCode { place: String, id: u32 },
    #[error("the thread has {frames} frames but {plans} resume plans")]
    PlanCount { frames: usize, plans: usize },
    #[error("frame {frame}: {what}")]
    Frame { frame: usize, what: String },
}

/// Why a capture was refused or failed, other than the memory read itself.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Something cannot be carried at this moment but may be soon (a sqlite3 transaction
    /// open, a cursor in the middle of its rows): attach waits for a moment without it.
    #[error("{what}")]
    NotNow { what: String },
    #[error("bytecode: no opcode table")]
    NoOpcodeTable { version: String },
    #[error("the teleport call was not found on the calling thread's stack")]
    ShimCallNotFound,
    #[error("nothing to carry: the teleport call has no Python caller")]
    NoPythonCaller,
    /// An object the restore engine cannot rebuild (`reason`), of type `type_name` at
    /// `addr`, held by the frame `holder` ("qualname (file:line)").
    #[error("cannot carry the {type_name} object at {addr:#x} reached from {holder}: {reason}")]
    Uncarriable { type_name: String, addr: u64, holder: String, reason: String },
    /// The shim could not reduce an object (the pickle protocol failed: `reason`).
    #[error("cannot carry the {type_name} object reached from {holder}: {reason}")]
    NotReduced { type_name: String, holder: String, reason: String },
    /// Other Python threads are running: a teleport moves the calling thread only, and
    /// leaving them behind silently would lose their work (threads: native id, where).
    /// Other threads did not come, within `waited`, to a point they can be carried from
    /// (native id, where, why), each.
    #[error("{} other thread(s) did not reach a point they can be carried from within {:.1} s (PYTELEPORT_THREAD_TIMEOUT): {}", .threads.len(), .waited.as_secs_f64(), describe_not_at_rest(.threads))]
    ThreadsNotAtRest { threads: Vec<(String, String, String)>, waited: Duration },
    #[error("the shim answered a reduce request with the wrong number of results")]
    ReduceAnswer { asked: usize, answered: usize },
}

/// Why a frame cannot be planned. Most are bytecode the planner cannot follow; the
/// last is a stack that cannot be resumed as it stands (a later moment may do).
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The frame's code object is not a code object in the graph.
    #[error("inconsistent interpreter memory at {addr:#x}: frame without code (the process may have changed while being read)")]
    FrameWithoutCode { addr: u64 },
    /// A frame inside a call whose `lasti` is not in its bytecode.
    #[error(
        "inconsistent interpreter memory at {addr:#x}: {qualname}: no instruction at offset {lasti} (the process may have changed while being read)"
    )]
    NoInstructionInCall { addr: u64, qualname: String, lasti: i64 },
    #[error("bytecode: {qualname}: {source}")]
    Bytecode { qualname: String, source: BytecodeError },
    #[error("bytecode: {source}")]
    ExceptionTable { source: BytecodeError },
    #[error("bytecode: {qualname}: no instruction at offset {lasti}")]
    NoInstruction { qualname: String, lasti: i64 },
    #[error("bytecode: {qualname}: backward jump without a target")]
    NoJumpTarget { qualname: String },
    #[error("bytecode: {qualname}: no stack depth at {offset}")]
    NoDepth { qualname: String, offset: u32 },
    #[error("{qualname} waits in {op}, not a call that can be made again")]
    NotARedoableCall { qualname: String, op: &'static str },
    #[error("bytecode: {qualname} line {line:?}: no stack depth after offset {}", 2 * .offset)]
    NoDepthAfterCall { qualname: String, line: Option<i32>, offset: u32 },
    #[error("bytecode: {qualname}: empty stack after the call")]
    EmptyAfterCall { qualname: String },
    #[error("bytecode: {qualname}: value stack of {have} entries, needs {need}")]
    ShallowStack { qualname: String, have: usize, need: u32 },
    #[error("bytecode: {qualname} line {line:?}: stopped in {op} with {have} stack entries, needs {need}")]
    ShallowStackInCall { qualname: String, line: Option<i32>, op: &'static str, have: usize, need: u32 },
    /// `inner` (a frame, as "qualname (file:line)") was called by C code (`callee`, the
    /// repr of what `outer` called) and cannot be resumed.
    #[error("{inner} is called from C code ({callee}) in {outer}: a frame called back from C cannot be resumed")]
    CalledFromC { inner: String, callee: String, outer: String },
}

impl ResumeError {
    /// The stack is fine as bytecode but cannot be resumed now (waiting may help).
    pub fn is_called_from_c(&self) -> bool {
        matches!(self, ResumeError::CalledFromC { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// This binary is installed in the site-packages of `installed` ("pythonX.Y"), the
    /// program runs CPython `major.minor`: another interpreter has to be named.
    #[error("this pyteleport is installed for {installed}, the program runs CPython {major}.{minor}")]
    SiteForOtherVersion { installed: String, major: u8, minor: u8 },
    #[error("pipe: {0}")]
    Pipe(nix::Error),
    #[error("cannot start {python}: {source}")]
    Spawn { python: String, source: std::io::Error },
    #[error("cannot run {python}: {source}")]
    Exec { python: String, source: std::io::Error },
    #[error("starting the new process: {0}")]
    Go(std::io::Error),
}

/// Why a snapshot was not written where it was asked to go (nothing there was changed).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Something other than a regular file is at the path (`kind`: "symbolic link", ...).
    #[error("{} is a {kind}, not a regular file: a snapshot is not written over it (name a new or regular file, or - for standard output)", .path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// The directory of `path` cannot take it (`why`: "does not exist", ...).
    #[error("cannot write a snapshot to {}: the directory {} {why}", .path.display(), .dir.display())]
    BadDirectory { path: PathBuf, dir: PathBuf, why: String },
    /// Other users may write to the directory: they could swap files under the name.
    #[error("cannot write a snapshot to {}: the directory {} is writable by other users (and not sticky and owned by root or by us)", .path.display(), .dir.display())]
    SharedDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot write the snapshot to {}: {what}: {source}; nothing there was changed", .path.display())]
    Write { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("standard output is a terminal: redirect it to a file or a pipe to receive the snapshot")]
    StdoutIsTerminal,
    #[error("cannot write the snapshot to standard output: {source}")]
    Stdout { source: std::io::Error },
    #[error("cannot create a private temporary directory in {}: {source}", .dir.display())]
    TempDir { dir: PathBuf, source: std::io::Error },
}

/// Why an attach did not happen (the target goes on untouched unless said otherwise).
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("process {pid} is shutting down: its main thread state is gone; it was left running")]
    ShuttingDown { pid: i32 },
    /// No safe point came in time; the main thread is in `place`.
    #[error("process {pid} reached no safe point within {:.1} s: its main thread is in {place}, probably inside a long call into C (sleep, blocking read, a numeric kernel); it was left running untouched", .timeout.as_secs_f64())]
    NoSafePoint { pid: i32, timeout: Duration, place: String },
    #[error("process {pid} has no Python main thread")]
    NoMainThread { pid: i32 },
    /// Other Python threads did not come, by the deadline, to a point they can be carried
    /// from (`("thread N \"name\"", "place: why")` each).
    #[error("process {pid} runs {} other Python thread(s) that did not reach a point they can be carried from in time: {}", .threads.len(), describe_others(.threads))]
    OtherThreads { pid: i32, threads: Vec<(String, String)> },
    #[error("the main thread runs no Python code")]
    NoPythonCode,
    /// An object of a C type only the shim's reduce could carry.
    #[error("cannot carry the {type_name} object at {addr:#x}: without the pyteleport shim in the process, objects of C types other than the builtin ones cannot be rebuilt")]
    NeedsShim { type_name: String, addr: u64 },
    /// Python work done inside the target at its safe point failed (the target goes on).
    #[error("the target could not finish {what}: {why}")]
    InTargetFailed { what: String, why: String },
    #[error("process {pid} reached no resumable point within {:.1} s: {why}; it was left running untouched", .timeout.as_secs_f64())]
    NeverResumable { pid: i32, timeout: Duration, why: ResumeError },
    #[error("process {pid} had, at every safe point within {:.1} s, something that cannot be carried at that moment: {what}; it was left running untouched", .timeout.as_secs_f64())]
    NeverCarriable { pid: i32, timeout: Duration, what: String },
    #[error("process {pid} ended while pyteleport waited for a moment when its stack could be resumed; nothing was moved")]
    EndedWhileWaiting { pid: i32 },
    #[error("cannot find _exit in the target's libc")]
    NoExit,
    #[error("the new process could not rebuild the state ({why}); process {pid} goes on untouched")]
    NotRebuilt { pid: i32, why: NotReady },
    #[error("internal: a migration let the target go before its capture")]
    ReleasedEarly,
}

/// Why a restore process waiting for the handshake did not say it was ready.
#[derive(Debug, Clone)]
pub enum NotReady {
    /// It said why (`e MESSAGE`).
    Refused(String),
    /// It ended without a word (status as a shell reports it, -1 if unknown).
    Exited(i32),
    /// The wait was called off (the attacher was killed); it is still to be abandoned.
    Cancelled,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Refused(msg) => f.write_str(msg),
            NotReady::Exited(code) => write!(f, "it exited with status {code}"),
            NotReady::Cancelled => f.write_str("the wait for it was called off"),
        }
    }
}

fn describe_others(threads: &[(String, String)]) -> String {
    threads.iter().map(|(who, place)| format!("{who} in {place}")).collect::<Vec<_>>().join("; ")
}

fn describe_not_at_rest(threads: &[(String, String, String)]) -> String {
    threads.iter().map(|(who, place, why)| format!("{who} in {place}: {why}")).collect::<Vec<_>>().join("; ")
}
