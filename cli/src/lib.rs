//! The command line: human messages and exit codes live here, nowhere else. The
//! library (`pyteleport`) returns typed errors and reports progress through callbacks;
//! this crate words them (adding what names a flag of these commands) and picks the exit
//! code.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use pyteleport::attach::{AttachError, Outcome, Progress};
use pyteleport::decode::Limits;
use pyteleport::launch::{status_code, LaunchError};
use pyteleport::snapshot::files::describe;
use pyteleport::Error;

#[derive(Parser)]
#[command(name = "pyteleport", version, about = "Read, snapshot and move running CPython programs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Authenticate snapshots with the key in FILE: those written carry an HMAC-SHA256
    /// tag, those read must carry one that verifies (also PYTELEPORT_KEY_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<std::path::PathBuf>,
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
        /// Write a snapshot to FILE (- for standard output) and leave the process running (see --exit).
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
        /// Checkpoint the process periodically into --checkpoint-dir until it ends (e.g. 10m, 30s).
        #[arg(long, value_name = "DURATION", requires = "checkpoint_dir", conflicts_with = "checkpoint")]
        every: Option<String>,
        /// Directory of periodic checkpoints (with --every).
        #[arg(long, value_name = "DIR", requires = "every")]
        checkpoint_dir: Option<std::path::PathBuf>,
        /// With --every: keep only the newest N checkpoints (0: all).
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep: usize,
        /// With --every: one JSON object per event on stderr instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a job (unmodified) and checkpoint it on a schedule and on signals; or resume it.
    ///
    /// `pyteleport run --checkpoint-dir DIR --every 10m --on-signal USR1 -- python job.py ARGS`.
    /// The job's exit status is the command's; after a checkpoint on a signal the job is
    /// ended and the command exits with 75, to be resumed with `--resume DIR`.
    Run {
        /// Where checkpoints (and their manifests) are written.
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<std::path::PathBuf>,
        /// Checkpoint periodically while the job runs (pause only), e.g. 10m, 30s, 500ms.
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// Checkpoint when this command receives one of these signals, then end the job (e.g. USR1,TERM).
        #[arg(long, value_name = "SIG[,SIG]")]
        on_signal: Option<String>,
        /// Keep only the newest N checkpoints (0: all).
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep: usize,
        /// Restore the newest complete, verifying checkpoint in DIR (else start the command, if given).
        #[arg(long, value_name = "DIR")]
        resume: Option<std::path::PathBuf>,
        /// Seconds a checkpoint may wait for the job to reach a safe point.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Write the progress lines to FILE instead of stderr.
        #[arg(long, value_name = "FILE")]
        log: Option<std::path::PathBuf>,
        /// One JSON object per event instead of text.
        #[arg(long)]
        json: bool,
        /// In a Slurm batch job: after a checkpoint on a signal, requeue the job
        /// (`scontrol requeue $SLURM_JOB_ID`), so that it runs again and resumes.
        #[arg(long, requires = "on_signal")]
        requeue: bool,
        /// The job's command line (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List the checkpoints in a directory, and whether each is complete and verifies.
    Checkpoints { dir: std::path::PathBuf },
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
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
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
    if let Some(key) = &cli.key_file {
        // For this command and every process it starts (attach, restore, the new process).
        match std::fs::canonicalize(key) {
            Ok(path) => std::env::set_var(pyteleport::snapshot::auth::KEY_FILE_VAR, path),
            Err(e) => {
                eprintln!("pyteleport: error: --key-file {}: {e}", key.display());
                return 2;
            }
        }
    }
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
            let state = pyteleport::inspect::read_process(pid, Limits::default()).map_err(|e| message(&e))?;
            if timings {
                eprintln!("paused {:.3} ms, copied {} bytes", state.pause.as_secs_f64() * 1e3, state.copied_bytes);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&pyteleport::dump::to_json(&state)).map_err(|e| e.to_string())?);
            } else {
                print!("{}", pyteleport::dump::to_text(&state));
            }
            Ok(0)
        }
        Command::Attach { pid, checkpoint, exit, timeout, main_thread_only, python, quiet, every, checkpoint_dir, keep, json } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(format!("--timeout must be a positive number of seconds, not {timeout}"));
            }
            if let (Some(every), Some(dir)) = (every, checkpoint_dir) {
                let opts = run_options(dir, Some(&every), None, keep, timeout)?;
                pyteleport::ops::prepare_directory(&opts.dir)?;
                let mut log = EventLog::new(None, json)?;
                // Not our child: its exit status is its parent's to know, not ours.
                let code = pyteleport::ops::supervise(&opts, pyteleport::ops::Job::Process(pid), next_sequence(&opts.dir), &mut |e| log.write(&e))?;
                return Ok(code.max(0));
            }
            let opts = pyteleport::attach::AttachOptions {
                pid,
                timeout: std::time::Duration::from_secs_f64(timeout),
                checkpoint,
                exit_after_checkpoint: exit,
                main_thread_only,
                python,
            };
            // The tracing happens in a child that outlives this command (see `guardian`).
            match pyteleport::guardian::fork_tracer() {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot start the tracer process: {e}")),
            }
            let mut progress = |p: Progress| {
                if !quiet {
                    eprintln!("pyteleport: {}", progress_line(&p));
                }
            };
            match pyteleport::attach::attach(&opts, &mut progress).map_err(|e| message(&e))? {
                Outcome::Checkpointed => Ok(0),
                // The new process's status is the command's, as it is the original's.
                Outcome::Moved { status, .. } => Ok(status_code(status)),
            }
        }
        Command::Run { checkpoint_dir, every, on_signal, keep, resume, timeout, log, json, requeue, command } => {
            let dir = match (&resume, checkpoint_dir) {
                (Some(r), Some(d)) if *r != d => return Err("--resume and --checkpoint-dir name different directories".into()),
                (Some(r), _) => r.clone(),
                (None, Some(d)) => d,
                (None, None) => return Err("say where checkpoints go: --checkpoint-dir DIR (or --resume DIR)".into()),
            };
            if resume.is_none() && command.is_empty() {
                return Err("no command to run: pyteleport run --checkpoint-dir DIR [--every 10m] -- python job.py".into());
            }
            let mut opts = run_options(dir, every.as_deref(), on_signal.as_deref(), keep, timeout)?;
            if requeue {
                match std::env::var("SLURM_JOB_ID") {
                    Ok(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => opts.requeue = Some(id),
                    Ok(id) if !id.is_empty() => return Err(format!("--requeue: SLURM_JOB_ID is not a job id: {id:?}")),
                    _ => return Err("--requeue: SLURM_JOB_ID is not set (it works inside a Slurm batch job)".into()),
                }
            }
            let mut log = EventLog::new(log.as_deref(), json)?;
            pyteleport::ops::run(&opts, &command, resume.is_some(), &mut |e| log.write(&e))
        }
        Command::Checkpoints { dir } => {
            let all = pyteleport::ops::list(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            if all.is_empty() {
                println!("no checkpoints in {}", dir.display());
            }
            for c in all {
                let m = c.manifest.as_ref();
                println!(
                    "{:>6}  {:<19}  {:>10}  {:<7}  {:<8}  {}",
                    c.sequence,
                    m.map(|m| pyteleport::ops::local_time(m.time)).unwrap_or_else(|| "-".into()),
                    m.map(|m| m.size.to_string()).unwrap_or_else(|| "-".into()),
                    if c.problem.is_none() { "ok" } else { "BAD" },
                    m.map(|m| m.python.clone()).unwrap_or_default(),
                    c.problem.clone().unwrap_or_else(|| m.map(|m| m.program.join(" ")).unwrap_or_default()),
                );
            }
            Ok(0)
        }
        Command::Inspect { file } => {
            let snap = load_snapshot(&file)?;
            print!("{}", pyteleport::dump::snapshot_text(&snap));
            Ok(0)
        }
        Command::Restore { file, python } => {
            let (data, confirm) = if file.as_os_str() == "-" { read_standard_input()? } else { (read_input(&file)?, false) };
            // A sender waiting for a confirmation learns why not, before anything runs.
            let refuse = |why: String| {
                if confirm {
                    confirm_on_stdout(&pyteleport::snapshot::report::Readiness::Failed(why.clone()));
                }
                why
            };
            let snap = pyteleport::snapshot::Snapshot::from_bytes(&data).map_err(|e| refuse(format!("{}: {e}", file.display())))?;
            let (python, site) =
                pyteleport::launch::interpreter_with_pyteleport(snap.python.major, snap.python.minor, &snap.process.executable, python.as_deref())
                    .map_err(|e| refuse(message(&e.into())))?;
            Err(refuse(message(&pyteleport::launch::restore_here(&python, site, &data, confirm, &snap.process.argv))))
        }
        Command::Supervise { pid, tid, shim_code, report_fd, reply_fd, python, to_file, to_shell } => {
            let dest = match (to_file, to_shell) {
                (Some(f), _) => pyteleport::teleport::Destination::File(f),
                (None, Some(cmd)) => pyteleport::teleport::Destination::Shell(cmd),
                (None, None) => pyteleport::teleport::Destination::Local,
            };
            let req = pyteleport::supervisor::CaptureRequest { pid, tid, shim_code };
            // Every outcome, failures too, went to the shim over the report pipe.
            let report = pyteleport::teleport::inherited_fd(report_fd).map_err(|e| e.to_string())?;
            let reply = reply_fd.map(pyteleport::teleport::inherited_fd).transpose().map_err(|e| e.to_string())?;
            Ok(match pyteleport::teleport::supervise(&req, report, reply, &python, &dest) {
                Ok(()) => 0,
                Err(_) => 1,
            })
        }
    }
}

fn run_options(
    dir: std::path::PathBuf,
    every: Option<&str>,
    on_signal: Option<&str>,
    keep: usize,
    timeout: f64,
) -> Result<pyteleport::ops::RunOptions, String> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(format!("--timeout must be a positive number of seconds, not {timeout}"));
    }
    let every = every.map(pyteleport::ops::parse_duration).transpose().map_err(|e| format!("--every: {e}"))?;
    let on_signals = on_signal.map(pyteleport::ops::parse_signals).transpose().map_err(|e| format!("--on-signal: {e}"))?.unwrap_or_default();
    let binary = std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    Ok(pyteleport::ops::RunOptions { dir, every, on_signals, keep, binary, timeout: std::time::Duration::from_secs_f64(timeout), requeue: None })
}

fn next_sequence(dir: &std::path::Path) -> u64 {
    pyteleport::ops::list(dir).ok().and_then(|l| l.last().map(|c| c.sequence + 1)).unwrap_or(1)
}

/// Where a run's events go: text lines or JSON objects, on stderr or in a log file.
struct EventLog {
    out: Box<dyn std::io::Write>,
    json: bool,
}

impl EventLog {
    fn new(file: Option<&std::path::Path>, json: bool) -> Result<EventLog, String> {
        let out: Box<dyn std::io::Write> = match file {
            Some(p) => Box::new(
                std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| format!("cannot open the log {}: {e}", p.display()))?,
            ),
            None => Box::new(std::io::stderr()),
        };
        Ok(EventLog { out, json })
    }

    fn write(&mut self, event: &pyteleport::ops::Event) {
        use pyteleport::ops::Event as E;
        let line = if self.json {
            let v = match event {
                E::Skipped { path, why } => serde_json::json!({"event": "skipped", "path": path, "why": why}),
                E::Started { pid, resumed_from } => serde_json::json!({"event": "started", "pid": pid, "resumed_from": resumed_from}),
                E::Checkpoint { sequence, path, size, took, paused, reason } => serde_json::json!({"event": "checkpoint", "sequence": sequence,
                    "path": path, "size": size, "seconds": took.as_secs_f64(), "paused_seconds": paused.map(|p| p.as_secs_f64()), "reason": reason}),
                E::CheckpointFailed { reason, why } => serde_json::json!({"event": "checkpoint_failed", "reason": reason, "why": why}),
                E::Removed { path } => serde_json::json!({"event": "removed", "path": path}),
                E::Forwarded { signal } => serde_json::json!({"event": "forwarded", "signal": signal}),
                E::Exited { code, checkpoints, last } => {
                    serde_json::json!({"event": "exited", "code": (*code >= 0).then_some(code), "checkpoints": checkpoints, "last": last})
                }
                E::CheckpointedAndStopped { path } => {
                    serde_json::json!({"event": "stopped_after_checkpoint", "path": path, "code": pyteleport::ops::CHECKPOINTED_ON_SIGNAL})
                }
                E::Requeued { job } => serde_json::json!({"event": "requeued", "job": job}),
                E::RequeueFailed { job, why } => serde_json::json!({"event": "requeue_failed", "job": job, "why": why}),
            };
            v.to_string()
        } else {
            let text = match event {
                E::Skipped { path, why } => format!("skipped {}: {why}", path.display()),
                E::Started { pid, resumed_from: Some(from) } => format!("resumed {} as process {pid}", from.display()),
                E::Started { pid, resumed_from: None } => format!("started the job as process {pid}"),
                E::Checkpoint { sequence, path, size, took, paused, reason } => {
                    let pause = paused.map(|p| format!(", job paused {:.1} ms", p.as_secs_f64() * 1e3)).unwrap_or_default();
                    format!(
                        "checkpoint {sequence} ({reason}) written to {} ({size} bytes, {:.0} ms{pause})",
                        path.display(),
                        took.as_secs_f64() * 1e3
                    )
                }
                E::CheckpointFailed { reason, why } => format!("checkpoint ({reason}) failed: {why}"),
                E::Removed { path } => format!("removed {}", path.display()),
                E::Forwarded { signal } => format!("passed signal {signal} on to the job"),
                E::Exited { code, checkpoints, last: Some(last) } if *code < 0 => {
                    format!("the job ended after {checkpoints} checkpoints (last: {})", last.display())
                }
                E::Exited { code, checkpoints, last: Some(last) } => {
                    format!("the job exited with status {code} after {checkpoints} checkpoints (last: {})", last.display())
                }
                E::Exited { code, checkpoints, last: None } if *code < 0 => format!("the job ended after {checkpoints} checkpoints"),
                E::Exited { code, checkpoints, last: None } => format!("the job exited with status {code} after {checkpoints} checkpoints"),
                E::CheckpointedAndStopped { path } => format!("the job was checkpointed to {} and ended; resume it with --resume", path.display()),
                E::Requeued { job } => format!("requeued Slurm job {job}: it resumes when it runs again"),
                E::RequeueFailed { job, why } => format!("could not requeue Slurm job {job}: {why}"),
            };
            format!("pyteleport run: {text}")
        };
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
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

/// The snapshot on stdin, and whether its sender waits for a confirmation: then it sent
/// `report::CONFIRM_PREAMBLE` and the length first, and exactly that much is read (stdin
/// stays open for the go).
fn read_standard_input() -> Result<(Vec<u8>, bool), String> {
    use std::io::{BufRead, Read};
    let preamble = pyteleport::snapshot::report::CONFIRM_PREAMBLE.as_bytes();
    let failed = |e: std::io::Error| format!("cannot read standard input: {e}");
    let mut stdin = std::io::stdin().lock();
    let mut head = vec![0u8; preamble.len()];
    let mut got = 0;
    while got < head.len() {
        match stdin.read(&mut head[got..]).map_err(failed)? {
            0 => break,
            n => got += n,
        }
    }
    head.truncate(got);
    if head != preamble {
        stdin.read_to_end(&mut head).map_err(failed)?;
        return Ok((head, false));
    }
    let mut line = String::new();
    (&mut stdin).take(32).read_line(&mut line).map_err(failed)?;
    let length: u64 = line.trim().parse().map_err(|_| {
        let why = "the snapshot's length on standard input is not a number".to_string();
        confirm_on_stdout(&pyteleport::snapshot::report::Readiness::Failed(why.clone()));
        why
    })?;
    let mut data = Vec::new();
    (&mut stdin).take(length).read_to_end(&mut data).map_err(failed)?;
    if data.len() as u64 != length {
        let why = format!("standard input ended after {} of the snapshot's {length} bytes", data.len());
        confirm_on_stdout(&pyteleport::snapshot::report::Readiness::Failed(why.clone()));
        return Err(why);
    }
    Ok((data, true))
}

/// The confirmation a snapshot's sender through a shell command waits for.
fn confirm_on_stdout(readiness: &pyteleport::snapshot::report::Readiness) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(pyteleport::snapshot::report::READY_MARKER.as_bytes());
    let _ = out.write_all(&readiness.encode());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn load_snapshot(file: &std::path::Path) -> Result<pyteleport::snapshot::Snapshot, String> {
    let data = read_input(file)?;
    pyteleport::snapshot::Snapshot::from_bytes(&data).map_err(|e| format!("{}: {e}", file.display()))
}

/// An error as the CLI words it: the library's message, and what to pass to these
/// commands when that is the way out.
fn message(e: &Error) -> String {
    match e {
        Error::Attach(AttachError::OtherThreads { .. }) => format!("{e}; pass --main-thread-only to move only the main thread"),
        Error::Launch(LaunchError::SiteForOtherVersion { major, minor, .. }) => {
            format!("{e}: pass --python (a python{major}.{minor} that can import pyteleport)")
        }
        e => e.to_string(),
    }
}

fn progress_line(p: &Progress) -> String {
    match p {
        Progress::WaitingForSafePoint { pid, place } => format!("waiting for process {pid} to reach a safe point (main thread in {place})"),
        Progress::NotResumableYet { why } => format!("not resumable yet ({why}); waiting for the process to leave that frame"),
        Progress::NotCarriableYet { what } => format!("not carriable at this moment ({what}); waiting for a moment without it"),
        Progress::ThreadsNotAtRest { what } => format!("waiting for the other threads to reach a point they can be carried from ({what})"),
        Progress::LeavingThreadsBehind { threads } => format!(
            "--main-thread-only: these threads are left behind, and a join on them will never return: {}",
            threads.iter().map(|(who, place)| format!("{who} in {place}")).collect::<Vec<_>>().join("; ")
        ),
        Progress::CheckpointWritten { path, paused: Some(paused) } => {
            format!("checkpoint written to {} (target paused {:.2} ms)", describe(path), paused.as_secs_f64() * 1e3)
        }
        Progress::CheckpointWritten { path, paused: None } => format!("checkpoint written to {}", describe(path)),
        Progress::Moved { pid, new_pid, paused } => {
            format!("process {pid} moved to process {new_pid} (paused {:.2} ms before the new process started)", paused.as_secs_f64() * 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named_by_the_cli_only() {
        let e: Error = AttachError::OtherThreads { pid: 7, threads: vec![("thread 8 \"pool-1\"".into(), "worker (w.py:3)".into())] }.into();
        assert!(!e.to_string().contains("--"));
        assert_eq!(
            message(&e),
            "process 7 runs 1 other Python thread(s) that did not reach a point they can be carried from in time: thread 8 \"pool-1\" in worker (w.py:3); pass --main-thread-only to move only the main thread"
        );
        let e: Error = LaunchError::SiteForOtherVersion { installed: "python3.12".into(), major: 3, minor: 11 }.into();
        assert_eq!(
            message(&e),
            "this pyteleport is installed for python3.12, the program runs CPython 3.11: pass --python (a python3.11 that can import pyteleport)"
        );
    }
}
