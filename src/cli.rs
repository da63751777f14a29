//! The command line: human messages and exit codes live here, nowhere else.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::decode::Limits;

#[derive(Parser)]
#[command(name = "pyteleport", version, about = "Read, snapshot and move running CPython programs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every thread, frame, local and value stack of a running CPython process.
    Dump {
        /// Process id of the CPython process.
        #[arg(long)]
        pid: i32,
        /// Print stable JSON (docs/dump-json.md) instead of a traceback-like text.
        #[arg(long)]
        json: bool,
        /// Also report how long the target was paused, on stderr.
        #[arg(long)]
        timings: bool,
    },
    /// Show a snapshot file as a traceback with locals.
    Inspect {
        /// The snapshot file.
        file: std::path::PathBuf,
    },
    /// Resume a snapshot in a new Python process (any number of times).
    Restore {
        /// The snapshot file, or - for standard input.
        file: std::path::PathBuf,
        /// The interpreter to resume in (default: the one the snapshot came from).
        #[arg(long)]
        python: Option<String>,
    },
    /// Move an unmodified running CPython process to a new process, or checkpoint it.
    Attach {
        /// Process id of the CPython process.
        pid: i32,
        /// Write a snapshot to FILE and leave the process running (see --exit).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
        /// With --checkpoint: end the process once the snapshot is safely on disk.
        #[arg(long, requires = "checkpoint")]
        exit: bool,
        /// Seconds to wait for the process to reach a safe point.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Carry only the main thread when other Python threads are running.
        #[arg(long)]
        main_thread_only: bool,
        /// Interpreter for the new process (one that can import pyteleport).
        #[arg(long)]
        python: Option<String>,
        /// No progress messages on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Used by the `pyteleport` Python package: capture the calling process and resume it.
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        pid: i32,
        #[arg(long)]
        tid: i32,
        #[arg(long)]
        shim_code: u64,
        #[arg(long)]
        report_fd: i32,
        /// Where the shim answers requests (objects to reduce).
        #[arg(long)]
        reply_fd: Option<i32>,
        #[arg(long)]
        python: String,
        /// Where the snapshot goes: a new local process (default), a file, or a shell command reading it on stdin.
        #[arg(long)]
        to_file: Option<std::path::PathBuf>,
        #[arg(long)]
        to_shell: Option<String>,
    },
}

/// Run the CLI; returns the process exit code. Never panics outward: a bug becomes a
/// one-line message and exit code 70, the target having been resumed by the guards.
pub fn main(args: Vec<OsString>) -> i32 {
    let _ = ptrace_tools::stop::install_detach_on_fatal_signals();
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<&str>().map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("pyteleport: internal error: {msg} (at {})", info.location().map(|l| l.to_string()).unwrap_or_default());
    }));
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(msg)) => {
            eprintln!("pyteleport: error: {msg}");
            1
        }
        Err(_) => 70,
    }
}

fn run(cli: Cli) -> Result<i32, String> {
    match cli.command {
        Command::Dump { pid, json, timings } => {
            let state = crate::inspect::read_process(pid, Limits::default()).map_err(|e| e.to_string())?;
            if timings {
                eprintln!("paused {:.3} ms, copied {} bytes", state.pause.as_secs_f64() * 1e3, state.copied_bytes);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&crate::dump::to_json(&state)).map_err(|e| e.to_string())?);
            } else {
                print!("{}", crate::dump::to_text(&state));
            }
            Ok(0)
        }
        Command::Attach { pid, checkpoint, exit, timeout, main_thread_only, python, quiet } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(format!("--timeout must be a positive number of seconds, not {timeout}"));
            }
            let opts = crate::attach::AttachOptions {
                pid,
                timeout: std::time::Duration::from_secs_f64(timeout),
                checkpoint,
                exit_after_checkpoint: exit,
                main_thread_only,
                python,
                quiet,
            };
            // The tracing happens in a child that outlives this command (see `guardian`).
            match crate::guardian::fork_tracer() {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot start the tracer process: {e}")),
            }
            crate::attach::attach(&opts).map_err(|e| e.to_string())
        }
        Command::Inspect { file } => {
            let snap = load_snapshot(&file)?;
            print!("{}", crate::dump::snapshot_text(&snap));
            Ok(0)
        }
        Command::Restore { file, python } => {
            let data = read_input(&file)?;
            let snap = crate::snapshot::Snapshot::from_bytes(&data).map_err(|e| format!("{}: {e}", file.display()))?;
            let (python, site) = crate::teleport::interpreter_with_pyteleport(snap.python.major, snap.python.minor, &snap.process.executable, python.as_deref())?;
            crate::teleport::restore_here(&python, site.as_deref(), &data).map_err(|e| e.to_string())
        }
        Command::Supervise { pid, tid, shim_code, report_fd, reply_fd, python, to_file, to_shell } => {
            let dest = match (to_file, to_shell) {
                (Some(f), _) => crate::teleport::Destination::File(f),
                (None, Some(cmd)) => crate::teleport::Destination::Shell(cmd),
                (None, None) => crate::teleport::Destination::Local,
            };
            let req = crate::supervisor::CaptureRequest { pid, tid, shim_code };
            Ok(crate::teleport::supervise(&req, report_fd, reply_fd, &python, &dest))
        }
    }
}

fn read_input(file: &std::path::Path) -> Result<Vec<u8>, String> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

fn load_snapshot(file: &std::path::Path) -> Result<crate::snapshot::Snapshot, String> {
    let data = read_input(file)?;
    crate::snapshot::Snapshot::from_bytes(&data).map_err(|e| format!("{}: {e}", file.display()))
}
