//! pyteleport: read a running CPython process out of its memory, snapshot its execution
//! state, and resume it in a fresh interpreter. The command line is the `pyteleport-cli`
//! package (`cli/`); this crate prints nothing and returns no exit codes.
//!
//! Crate map: `layouts` (offset tables per version), `process` (finding the interpreter),
//! `decode` (object graph, frame and thread decoder), `snapshot` (the model it builds),
//! `bytecode` and `opcodes` (bytecode analysis), `repr`, `inspect` (stop/copy/resume), `dump`.
//! Moving a process: `capture` (what teleport and attach both read), `resume` (the
//! resume planner), `supervisor` + `teleport` (a teleport asked for by the shim),
//! `thread_rest` (where each thread stands, and whether it can be carried from there),
//! `attach` (an unmodified process; `intarget`: Python work it has the target do at the
//! safe point), `launch` (starting the restore process).

pub mod attach;
pub mod bytecode;
pub mod capture;
pub mod decode;
pub mod delivery;
pub mod dump;
pub mod error;
pub mod guardian;
pub mod inspect;
pub mod intarget;
pub mod launch;
pub mod layouts;
pub mod memcopy;
pub mod opcodes;
pub mod ops;
// Generated (scripts/gen_printable_table.py): kept exactly as the generator writes it.
#[rustfmt::skip]
pub mod printable;
pub mod process;
pub mod repr;
pub mod resume;
pub mod snapshot;
pub mod supervisor;
pub mod teleport;
pub mod thread_rest;
pub mod timing;

pub use error::{Error, Result};
