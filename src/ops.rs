//! Checkpointing long jobs for operations: `pyteleport run` starts a job and checkpoints
//! it on a schedule and on a signal; `--resume` restores the newest checkpoint that is
//! complete and verifies; `pyteleport checkpoints DIR` lists them.
//!
//! A checkpoint directory holds `ckpt-NNNNNN.snap` (written atomically by attach) and,
//! once that file is complete, its manifest `ckpt-NNNNNN.json` (written atomically after
//! it): a snapshot without a manifest, or whose size or checksum differs from its
//! manifest, or that does not decode, is never chosen. Each checkpoint is taken by
//! `pyteleport attach PID --checkpoint FILE` run as a child (its own guarded tracer), so
//! the job's supervisor only waits for the job and never traces it itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::snapshot::files::write_atomically;

/// What a checkpoint's manifest says about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub sequence: u64,
    /// Seconds since the epoch when it was written.
    pub time: f64,
    pub size: u64,
    /// CRC-32 of the whole snapshot file.
    pub crc32: u32,
    pub python: String,
    /// The program's `sys.argv`.
    pub program: Vec<String>,
    /// The process it was taken from.
    pub pid: i32,
}

const MANIFEST_FORMAT: u32 = 1;

/// A checkpoint found in a directory, and whether it can be restored.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub sequence: u64,
    pub snapshot: PathBuf,
    pub manifest: Option<Manifest>,
    /// None when it is complete and verifies; else why not.
    pub problem: Option<String>,
}

fn snapshot_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("ckpt-{sequence:06}.snap"))
}

fn manifest_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("ckpt-{sequence:06}.json"))
}

fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("ckpt-")?.strip_suffix(".snap").or_else(|| name.strip_prefix("ckpt-")?.strip_suffix(".json"))?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Every checkpoint in `dir`, oldest first, each verified (size, checksum, decoding).
pub fn list(dir: &Path) -> std::io::Result<Vec<Checkpoint>> {
    let mut sequences: Vec<u64> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().and_then(sequence_of)).collect();
    sequences.sort_unstable();
    sequences.dedup();
    Ok(sequences.into_iter().map(|n| verify(dir, n)).collect())
}

fn verify(dir: &Path, sequence: u64) -> Checkpoint {
    let snapshot = snapshot_path(dir, sequence);
    let manifest = std::fs::read(manifest_path(dir, sequence)).ok().and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
    let problem = match (&manifest, std::fs::read(&snapshot)) {
        (None, _) => Some("incomplete: no manifest".to_string()),
        (Some(_), Err(e)) => Some(format!("snapshot unreadable: {e}")),
        (Some(m), Ok(bytes)) if bytes.len() as u64 != m.size => Some(format!("size {} instead of {}", bytes.len(), m.size)),
        (Some(m), Ok(bytes)) if crc32fast::hash(&bytes) != m.crc32 => Some("checksum differs from the manifest's".to_string()),
        (Some(_), Ok(bytes)) => crate::snapshot::Snapshot::from_bytes(&bytes).err().map(|e| format!("does not decode: {e}")),
    };
    Checkpoint { sequence, snapshot, manifest, problem }
}

/// The newest checkpoint in `dir` that is complete and verifies.
pub fn newest_good(dir: &Path) -> std::io::Result<Option<Checkpoint>> {
    Ok(list(dir)?.into_iter().rev().find(|c| c.problem.is_none()))
}

/// Something a run reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// `--resume` passed over a newer checkpoint that does not verify.
    Skipped {
        path: PathBuf,
        why: String,
    },
    Started {
        pid: i32,
        resumed_from: Option<PathBuf>,
    },
    /// `paused`: how long the job itself was stopped (None when it was ended after).
    Checkpoint {
        sequence: u64,
        path: PathBuf,
        size: u64,
        took: Duration,
        paused: Option<Duration>,
        reason: &'static str,
    },
    CheckpointFailed {
        reason: &'static str,
        why: String,
    },
    Removed {
        path: PathBuf,
    },
    Forwarded {
        signal: i32,
    },
    Exited {
        code: i32,
        checkpoints: u64,
        last: Option<PathBuf>,
    },
    CheckpointedAndStopped {
        path: PathBuf,
    },
    /// After a checkpoint on a signal (`--requeue`): `scontrol requeue JOB` worked.
    Requeued {
        job: String,
    },
    RequeueFailed {
        job: String,
        why: String,
    },
}

/// How a run goes.
pub struct RunOptions {
    pub dir: PathBuf,
    pub every: Option<Duration>,
    /// Signals that checkpoint the job and then end it.
    pub on_signals: Vec<i32>,
    /// Checkpoints kept (the newest); 0 keeps all.
    pub keep: usize,
    /// `pyteleport` itself, to run `attach` and `restore` with.
    pub binary: PathBuf,
    /// How long a checkpoint may wait for a safe point.
    pub timeout: Duration,
    /// The Slurm job to requeue (`scontrol requeue JOB`) once the job is checkpointed on a
    /// signal and ended: only then, so that Slurm's kill of the job's processes never
    /// meets a checkpoint being written.
    pub requeue: Option<String>,
}

/// What is being checkpointed.
pub enum Job {
    /// A child of ours: its exit status is the run's.
    Child(Child),
    /// A process started by someone else (`pyteleport attach PID --every`).
    Process(i32),
}

impl Job {
    pub fn pid(&self) -> i32 {
        match self {
            Job::Child(c) => c.id() as i32,
            Job::Process(pid) => *pid,
        }
    }

    /// The exit code once it has ended (None while it runs; -1 when not ours to know).
    fn ended(&mut self) -> std::io::Result<Option<i32>> {
        match self {
            Job::Child(c) => Ok(c.try_wait()?.map(crate::launch::status_code)),
            Job::Process(pid) => {
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
                let alive = state
                    .as_deref()
                    .and_then(|s| s.rsplit(')').next())
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|st| st != "Z" && st != "X");
                Ok((!alive).then_some(-1))
            }
        }
    }
}

/// The exit code a run returns after checkpointing the job on a signal and ending it:
/// "try again later" (EX_TEMPFAIL), for a scheduler's requeue logic.
pub const CHECKPOINTED_ON_SIGNAL: i32 = 75;

/// Start `command` (or restore the newest good checkpoint in `opts.dir` when `resume` and
/// there is one), checkpoint it as asked, and return the job's exit code.
pub fn run(opts: &RunOptions, command: &[String], resume: bool, events: &mut dyn FnMut(Event)) -> Result<i32, String> {
    prepare_directory(&opts.dir)?;
    let from = if resume {
        let all = list(&opts.dir).map_err(|e| format!("cannot read {}: {e}", opts.dir.display()))?;
        let chosen = all.iter().rev().position(|c| c.problem.is_none()).map(|k| all.len() - 1 - k);
        // Newer ones that do not verify are passed over, and said to be: a tampered or
        // half-written checkpoint must not go unnoticed.
        for c in &all[chosen.map_or(0, |k| k + 1)..] {
            events(Event::Skipped { path: c.snapshot.clone(), why: c.problem.clone().unwrap_or_default() });
        }
        chosen.map(|k| all[k].clone())
    } else {
        None
    };
    let mut cmd = match &from {
        Some(c) => {
            let mut cmd = Command::new(&opts.binary);
            cmd.arg("restore").arg(&c.snapshot);
            cmd
        }
        None if command.is_empty() => return Err(format!("no complete checkpoint in {} and no command to start", opts.dir.display())),
        None => {
            let mut cmd = Command::new(&command[0]);
            cmd.args(&command[1..]);
            cmd
        }
    };
    let ignored = opts.on_signals.clone();
    // SAFETY: between fork and exec, only async-signal-safe calls (prctl, getppid,
    // signal, _exit) on values copied before the fork.
    unsafe {
        let runner = libc::getpid();
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // The job ends with its runner: killed (SIGKILL cannot be caught), the runner
            // cannot checkpoint it any more, and a job left running on its own would run
            // alongside its own resume.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != runner {
                libc::_exit(1);
            }
            // The signals that mean "checkpoint, then end" are the runner's to act on:
            // sent to every process of the job (a Slurm step, a process group), the job
            // would otherwise die of them before it is checkpointed.
            for &sig in &ignored {
                libc::signal(sig, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start the job: {e}"))?;
    let next = list(&opts.dir).ok().and_then(|l| l.last().map(|c| c.sequence + 1)).unwrap_or(1);
    events(Event::Started { pid: child.id() as i32, resumed_from: from.map(|c| c.snapshot) });
    supervise(opts, Job::Child(child), next, events)
}

/// Make the checkpoint directory (private to its owner) if it is missing, and refuse one
/// that others may write to (they could plant or swap a checkpoint the resume then runs).
pub fn prepare_directory(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    use crate::error::FileError;
    match crate::snapshot::files::check_destination(&dir.join("checkpoint-check")) {
        Ok(()) => Ok(()),
        Err(FileError::SharedDirectory { .. }) => Err(format!(
            "the checkpoint directory {} is writable by other users (they could replace a checkpoint the resume then runs): use a private one",
            dir.display()
        )),
        Err(FileError::BadDirectory { why, .. }) => Err(format!("the checkpoint directory {} {why}", dir.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// Checkpoint `job` as `opts` says until it ends; its exit code.
pub fn supervise(opts: &RunOptions, mut job: Job, first_sequence: u64, events: &mut dyn FnMut(Event)) -> Result<i32, String> {
    let signals = SignalFlags::install(&opts.on_signals);
    let mut sequence = first_sequence;
    let mut taken = 0u64;
    let mut last = None;
    let mut due = opts.every.map(|d| Instant::now() + d);
    loop {
        if let Some(code) = job.ended().map_err(|e| format!("cannot wait for the job: {e}"))? {
            events(Event::Exited { code, checkpoints: taken, last: last.clone() });
            return Ok(code);
        }
        for sig in signals.take_received() {
            if opts.on_signals.contains(&sig) {
                // Checkpoint, then end the job: the scheduler's notice before it stops us.
                match checkpoint(opts, job.pid(), sequence, true) {
                    Ok((path, size, took, paused)) => {
                        events(Event::Checkpoint { sequence, path: path.clone(), size, took, paused, reason: "signal" });
                        retain(opts, events);
                        wait_ended(&mut job);
                        events(Event::CheckpointedAndStopped { path });
                        if let Some(job) = &opts.requeue {
                            match requeue(job) {
                                Ok(()) => events(Event::Requeued { job: job.clone() }),
                                Err(why) => events(Event::RequeueFailed { job: job.clone(), why }),
                            }
                        }
                        return Ok(CHECKPOINTED_ON_SIGNAL);
                    }
                    Err(why) => {
                        // Nothing saved: the job keeps the signal, as it would without us.
                        events(Event::CheckpointFailed { reason: "signal", why });
                        // SAFETY: kill(2) on the job's pid.
                        unsafe { libc::kill(job.pid(), sig) };
                    }
                }
            } else if !signals.sent_by_terminal(sig) {
                // SAFETY: kill(2) on the job's pid.
                unsafe { libc::kill(job.pid(), sig) };
                events(Event::Forwarded { signal: sig });
            }
        }
        if due.is_some_and(|d| Instant::now() >= d) {
            match checkpoint(opts, job.pid(), sequence, false) {
                Ok((path, size, took, paused)) => {
                    events(Event::Checkpoint { sequence, path: path.clone(), size, took, paused, reason: "schedule" });
                    sequence += 1;
                    taken += 1;
                    last = Some(path);
                    retain(opts, events);
                }
                // The job ended meanwhile, or could not be captured now: try at the next time.
                Err(why) => {
                    if job.ended().ok().flatten().is_none() {
                        events(Event::CheckpointFailed { reason: "schedule", why });
                    }
                }
            }
            due = opts.every.map(|d| Instant::now() + d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ask Slurm to requeue `job`: it ends this run (Slurm signals what is left of the job's
/// processes, this one included) and starts the batch script again later, where `--resume`
/// finds the checkpoint just written.
fn requeue(job: &str) -> Result<(), String> {
    let out = Command::new("scontrol")
        .arg("requeue")
        .arg(job)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run scontrol: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(if why.is_empty() { format!("scontrol requeue exited with {}", out.status) } else { why })
}

fn wait_ended(job: &mut Job) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until && job.ended().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Take checkpoint `sequence` of `pid` (ending it after if `exit`): the snapshot, then its
/// manifest. Returns its path, size, how long it took and how long the job was paused.
fn checkpoint(opts: &RunOptions, pid: i32, sequence: u64, exit: bool) -> Result<(PathBuf, u64, Duration, Option<Duration>), String> {
    let started = Instant::now();
    let path = snapshot_path(&opts.dir, sequence);
    let mut cmd = Command::new(&opts.binary);
    cmd.arg("attach").arg(pid.to_string()).arg("--checkpoint").arg(&path).arg("--timeout").arg(opts.timeout.as_secs_f64().to_string());
    if exit {
        cmd.arg("--exit");
    }
    // Below the job's priority: decoding and writing a large state takes seconds of CPU
    // the job should not lose (it is paused only while its memory is copied).
    // SAFETY: setpriority on ourselves, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| format!("cannot run attach: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&path);
        let why = String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("pyteleport: error: ").to_string();
        return Err(if why.is_empty() { format!("attach exited with {}", out.status) } else { why });
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read back {}: {e}", path.display()))?;
    let snap = crate::snapshot::Snapshot::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        sequence,
        time: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        size: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
        python: format!("{}.{}.{}", snap.python.major, snap.python.minor, snap.python.micro),
        program: snap.process.argv.clone(),
        pid,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    write_atomically(&manifest_path(&opts.dir, sequence), &text).map_err(|e| e.to_string())?;
    // attach says "(target paused X ms)" when the job went on right after the copy.
    let said = String::from_utf8_lossy(&out.stderr);
    let paused = said
        .split("target paused ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|ms| ms.trim().parse::<f64>().ok())
        .map(|ms| Duration::from_secs_f64(ms / 1e3));
    Ok((path, bytes.len() as u64, started.elapsed(), paused))
}

/// Remove all but the newest `opts.keep` complete checkpoints (and anything older that
/// never completed).
fn retain(opts: &RunOptions, events: &mut dyn FnMut(Event)) {
    if opts.keep == 0 {
        return;
    }
    let Ok(all) = list(&opts.dir) else { return };
    let good: Vec<u64> = all.iter().filter(|c| c.problem.is_none()).map(|c| c.sequence).collect();
    if good.is_empty() {
        return;
    }
    let oldest_kept = good[good.len().saturating_sub(opts.keep)];
    for c in all.iter().filter(|c| c.sequence < oldest_kept) {
        // Manifest first: a checkpoint without one is never chosen.
        let _ = std::fs::remove_file(manifest_path(&opts.dir, c.sequence));
        if std::fs::remove_file(&c.snapshot).is_ok() {
            events(Event::Removed { path: c.snapshot.clone() });
        }
    }
}

/// Signals received, from handlers that only set a flag.
struct SignalFlags {
    watched: Vec<i32>,
}

static RECEIVED: [std::sync::atomic::AtomicBool; 65] = [const { std::sync::atomic::AtomicBool::new(false) }; 65];
/// Set when the last such signal came from the kernel (a terminal's Ctrl-C, Ctrl-\):
/// sent to the whole foreground process group, the job has it already.
static FROM_KERNEL: [std::sync::atomic::AtomicBool; 65] = [const { std::sync::atomic::AtomicBool::new(false) }; 65];

extern "C" fn note_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    if let Some(flag) = RECEIVED.get(sig as usize) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let code = if info.is_null() { 0 } else { unsafe { (*info).si_code } };
        FROM_KERNEL[sig as usize].store(code == libc::SI_KERNEL, std::sync::atomic::Ordering::SeqCst);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl SignalFlags {
    /// Watch `extra` and the signals a job's supervisor forwards (TERM, INT, HUP, QUIT,
    /// USR1, USR2).
    fn install(extra: &[i32]) -> SignalFlags {
        let mut watched = vec![libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];
        for &sig in extra {
            if !watched.contains(&sig) {
                watched.push(sig);
            }
        }
        for &sig in &watched {
            let action = nix::sys::signal::SigAction::new(
                nix::sys::signal::SigHandler::SigAction(note_signal),
                nix::sys::signal::SaFlags::SA_RESTART | nix::sys::signal::SaFlags::SA_SIGINFO,
                nix::sys::signal::SigSet::empty(),
            );
            if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
                // SAFETY: the handler only stores to an atomic.
                let _ = unsafe { nix::sys::signal::sigaction(s, &action) };
            }
        }
        SignalFlags { watched }
    }

    fn sent_by_terminal(&self, sig: i32) -> bool {
        FROM_KERNEL.get(sig as usize).is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn take_received(&self) -> Vec<i32> {
        self.watched.iter().copied().filter(|&s| RECEIVED[s as usize].swap(false, std::sync::atomic::Ordering::SeqCst)).collect()
    }
}

/// A duration as people write it: `90`, `1.5s`, `500ms`, `10m`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("not a duration: {text:?} (write 30s, 500ms, 10m or 2h)"))?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m or h)")),
    };
    let seconds = value * scale;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("a duration must be positive: {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `USR1,TERM` (also `SIGUSR1`, or numbers).
pub fn parse_signals(text: &str) -> Result<Vec<i32>, String> {
    text.split(',')
        .map(|name| {
            let n = name.trim().to_ascii_uppercase();
            let n = n.strip_prefix("SIG").unwrap_or(&n).to_string();
            if let Ok(num) = n.parse::<i32>() {
                return nix::sys::signal::Signal::try_from(num).map(|s| s as i32).map_err(|_| format!("no signal {num}"));
            }
            format!("SIG{n}").parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| format!("unknown signal {name:?}"))
        })
        .collect()
}

/// Seconds since the epoch as local `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(epoch: f64) -> String {
    let secs = epoch as libc::time_t;
    // SAFETY: localtime_r fills `tm`, a zeroed struct on this stack frame.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert!(parse_duration("-1s").is_err() && parse_duration("5 parsecs").is_err() && parse_duration("").is_err());
    }

    #[test]
    fn only_checkpoint_names_count() {
        assert_eq!(sequence_of("ckpt-000012.snap"), Some(12));
        assert_eq!(sequence_of("ckpt-000012.json"), Some(12));
        assert_eq!(sequence_of("ckpt-12.snap"), None);
        assert_eq!(sequence_of(".ckpt-000012.snap.tmp1"), None);
    }
}
