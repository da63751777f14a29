//! The command line: human messages and exit codes live here, nowhere else.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::objects::Limits;

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
    }
}
