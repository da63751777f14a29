//! Process-level plumbing for pyteleport's supervisor: stop every thread of a
//! Linux process with ptrace, read and write its memory, parse its memory
//! maps and locate ELF symbols in it.
//!
//! This crate deliberately knows nothing about Python; interpreter layouts
//! live in the layers above it.

pub mod breakpoint;
pub mod call;
pub mod code;
pub mod elf;
pub mod error;
pub mod files;
pub mod maps;
pub mod memory;
pub mod stop;
pub mod threads;

pub use breakpoint::HwBreakpoint;
pub use elf::{symbol_address_in_process, ElfFile, ElfSymbol};
pub use error::{Error, Result};
pub use files::{open_files, OpenFile};
pub use maps::{read_maps, MapRegion};
pub use memory::{FakeMemory, MemoryReader, ProcessMemory};
pub use stop::{install_detach_on_fatal_signals, AloneOutcome, RunOutcome, StoppedProcess};
pub use threads::{exe_path, list_threads, process_exists, thread_name};
