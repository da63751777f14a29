//! Delivering a snapshot through a shell command (`teleport(to_shell="ssh host
//! pyteleport restore -")`) with a confirmation: the command gets
//! `CONFIRM_PREAMBLE LENGTH\n` and the snapshot on its stdin; the restore at the far end
//! rebuilds everything and answers `READY_MARKER`, a readiness and a newline on its
//! stdout, then runs once `GO` comes on its stdin (`snapshot::report`). The original lets
//! go only after that answer: a refused ssh, a missing pyteleport, another Python, a
//! command that never reads or never answers are all failed deliveries, and the program
//! goes on in the original.
//!
//! The command's stdout and stderr are the program's from then on: they are passed on to
//! ours (the original's) by relay threads, the marker line left out. Its stdout before
//! the marker is passed on as it comes; its stderr is held back until the confirmation
//! (on a failure it goes into the message instead).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::launch::status_code;
use crate::snapshot::report::{Readiness, CONFIRM_PREAMBLE, GO, READY_MARKER};

/// How long the far end may take to answer once it has the whole snapshot
/// (`PYTELEPORT_CONFIRM_TIMEOUT`, seconds): enough for a large state to be rebuilt.
const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(120);

/// Hold back at most this much of the command's stderr before the confirmation.
const STDERR_HELD: usize = 1 << 20;

/// A delivered snapshot: the command, now running the program, and the threads passing
/// its output on (they end when it closes its output).
pub struct Delivered {
    pub child: Child,
    pub relays: Vec<JoinHandle<()>>,
}

/// Send `snapshot` to shell command `cmd` and wait for its confirmation; on failure the
/// command has ended (or was killed) and the message says what it said.
pub fn through_shell(cmd: &str, snapshot: &[u8]) -> Result<Delivered, String> {
    let failed = |why: String| format!("delivery to `{cmd}` failed: {why}");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start /bin/sh: {e}")))?;
    let (Some(stdin), Some(stdout_pipe), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("no pipes to the command".into()));
    };
    let held = Arc::new(Mutex::new(HeldStderr::default()));
    let stderr_relay = relay_stderr(stderr, held.clone());
    // Written by a thread: the command may write (a banner, an error) before reading it all.
    let sent_at = Arc::new(Mutex::new(None));
    let mut message = format!("{CONFIRM_PREAMBLE}{}\n", snapshot.len()).into_bytes();
    message.extend_from_slice(snapshot);
    let writer = {
        let sent_at = sent_at.clone();
        std::thread::spawn(move || -> (ChildStdin, std::io::Result<()>) {
            let mut stdin = stdin;
            let result = stdin.write_all(&message).and_then(|()| stdin.flush());
            *sent_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            (stdin, result)
        })
    };
    let timeout = std::env::var("PYTELEPORT_CONFIRM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_CONFIRM_TIMEOUT);
    let answer = wait_for_confirmation(stdout_pipe, &sent_at, timeout);
    let (stdout_pipe, rest) = match answer {
        Ok((Readiness::Ready, pipe, rest)) => (pipe, rest),
        Ok((Readiness::Failed(why), _, _)) => return Err(failed(give_up(child, stderr_relay, &held, format!("the far end refused: {why}")))),
        Err(why) => return Err(failed(give_up(child, stderr_relay, &held, why))),
    };
    let (mut stdin, written) = writer.join().map_err(|_| failed("the writer thread panicked".into()))?;
    if let Err(e) = written.and_then(|()| stdin.write_all(GO)).and_then(|()| stdin.flush()) {
        return Err(failed(give_up(child, stderr_relay, &held, format!("the command stopped reading: {e}"))));
    }
    // Confirmed: its stderr is the program's from now on.
    held.lock().unwrap_or_else(|e| e.into_inner()).go_live();
    // End of its stdin, as when the snapshot was all it got.
    drop(stdin);
    let stdout_relay = relay_stdout(stdout_pipe, rest);
    Ok(Delivered { child, relays: vec![stdout_relay, stderr_relay] })
}

/// End a failed delivery: the command (ours, started above) is killed and reaped, and
/// the reason says what it wrote on stderr.
fn give_up(mut child: Child, stderr_relay: JoinHandle<()>, held: &Mutex<HeldStderr>, why: String) -> String {
    let _ = child.kill();
    let status = child.wait().map(status_code).ok();
    // Ends once the command's stderr closes (a process it left behind may keep it open).
    let until = Instant::now() + Duration::from_secs(2);
    while !stderr_relay.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut why = why;
    if let Some(code) = status.filter(|_| why.contains("ended")) {
        why = format!("{why} (status {code})");
    }
    let said = String::from_utf8_lossy(&held.lock().unwrap_or_else(|e| e.into_inner()).bytes).trim().to_string();
    if !said.is_empty() {
        why = format!("{why}; it said: {}", last_lines(&said, 3));
    }
    why
}

/// The command's stderr: held back until the delivery is confirmed (it explains a
/// failure, and the program goes on in the original without that noise), then passed on.
#[derive(Default)]
struct HeldStderr {
    bytes: Vec<u8>,
    live: bool,
}

impl HeldStderr {
    fn go_live(&mut self) {
        let mut ours = std::io::stderr();
        let _ = ours.write_all(&self.bytes);
        self.bytes.clear();
        self.live = true;
    }
}

/// Read the command's stdout until the marker and the readiness after it, passing on what
/// comes before. Returns the readiness, the pipe and what followed the readiness line.
fn wait_for_confirmation(
    mut pipe: std::process::ChildStdout,
    sent_at: &Mutex<Option<Instant>>,
    timeout: Duration,
) -> Result<(Readiness, std::process::ChildStdout, Vec<u8>), String> {
    let marker = READY_MARKER.as_bytes();
    let mut pending: Vec<u8> = Vec::new();
    let mut ours = std::io::stdout();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(at) = pending.windows(marker.len()).position(|w| w == marker) {
            let _ = ours.write_all(&pending[..at]);
            let _ = ours.flush();
            let after = &pending[at + marker.len()..];
            if let Some(nl) = after.iter().position(|&b| b == b'\n') {
                let readiness = Readiness::decode(&after[..nl]).ok_or("the far end answered something unreadable")?;
                return Ok((readiness, pipe, after[nl + 1..].to_vec()));
            }
        } else {
            // Pass on everything that cannot be the start of a marker.
            let keep = (1..marker.len()).rev().find(|&k| pending.len() >= k && pending.ends_with(&marker[..k])).unwrap_or(0);
            let cut = pending.len() - keep;
            if cut > 0 {
                let _ = ours.write_all(&pending[..cut]);
                let _ = ours.flush();
                pending.drain(..cut);
            }
        }
        // Wait for output, bounded once the whole snapshot has been written.
        let wait_ms = match *sent_at.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(at) => {
                let left = timeout.saturating_sub(at.elapsed());
                if left.is_zero() {
                    return Err(format!("no confirmation within {:.0} s of sending the snapshot", timeout.as_secs_f64()));
                }
                left.as_millis().min(200) as i32
            }
            None => 200,
        };
        let mut fds = [libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: one valid pollfd for a descriptor we own.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, wait_ms) };
        if ready <= 0 {
            continue; // timed out (checked above) or interrupted
        }
        match pipe.read(&mut chunk) {
            Ok(0) => {
                let _ = ours.write_all(&pending);
                let _ = ours.flush();
                return Err("the command ended without confirming the restore".into());
            }
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the command's output: {e}")),
        }
    }
}

fn relay_stdout(mut pipe: std::process::ChildStdout, first: Vec<u8>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ours = std::io::stdout();
        let _ = ours.write_all(&first);
        let _ = ours.flush();
        let mut chunk = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 || ours.write_all(&chunk[..n]).and_then(|()| ours.flush()).is_err() {
                break;
            }
        }
    })
}

fn relay_stderr(mut pipe: std::process::ChildStderr, held: Arc<Mutex<HeldStderr>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ours = std::io::stderr();
        let mut chunk = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
            if h.live {
                let _ = ours.write_all(&chunk[..n]);
            } else {
                h.bytes.extend_from_slice(&chunk[..n]);
                let excess = h.bytes.len().saturating_sub(STDERR_HELD);
                h.bytes.drain(..excess);
            }
        }
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
