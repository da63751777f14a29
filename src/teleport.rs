//! Moving a captured process: write the snapshot where it was asked to go and start the
//! new interpreter there, reporting to the shim over a pipe.
//!
//! Report protocol (one line each, on `--report-fd`): `error MESSAGE`, `saved PATH`,
//! `started PID`, then `exit CODE` when the new process ends. `started` comes only once
//! the new side has confirmed that it has the whole snapshot and has rebuilt it
//! (`snapshot::report`); before that, any failure is an `error` and the program goes on.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::FromRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::launch::{status_code, LaunchError, Restore};
use crate::snapshot::report::{Reply, Report, SHM_MARKER};
use crate::supervisor::{capture, CaptureRequest};

pub enum Destination {
    Local,
    File(PathBuf),
    Shell(String),
}

/// Capture `req`, then deliver. Every outcome is reported to the shim, failures too
/// (then also returned).
/// A descriptor this process inherited for one purpose (the shim's report and reply
/// pipes), taken over once its number is checked to be open.
pub fn inherited_fd(fd: i32) -> Result<std::os::unix::io::OwnedFd, Error> {
    // SAFETY: fcntl(F_GETFD) only queries the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(Error::Io {
            context: format!("descriptor {fd} handed to the supervisor"),
            source: std::io::Error::from_raw_os_error(libc::EBADF),
        });
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process for
    // this use only: nothing else here owns it, so it is closed exactly once.
    Ok(unsafe { std::os::unix::io::OwnedFd::from_raw_fd(fd) })
}

pub fn supervise(
    req: &CaptureRequest,
    report: std::os::unix::io::OwnedFd,
    reply: Option<std::os::unix::io::OwnedFd>,
    python: &str,
    dest: &Destination,
) -> Result<(), Error> {
    let report = std::cell::RefCell::new(std::fs::File::from(report));
    let say = |message: Report| {
        let mut r = report.borrow_mut();
        let _ = writeln!(r, "{}", message.encode());
        let _ = r.flush();
    };
    let mut replies = reply.map(|fd| std::io::BufReader::new(std::fs::File::from(fd)));
    // `reduce ADDR...` asks the shim to reduce objects; it answers with the address of a
    // list of reduce tuples (kept alive until it is told the outcome), or `error MESSAGE`.
    let mut reducer = |addrs: &[u64]| -> std::result::Result<u64, String> {
        let replies = replies.as_mut().ok_or("no shim to reduce objects")?;
        say(if addrs.is_empty() { Report::Settle } else { Report::Reduce(addrs.to_vec()) });
        let mut line = String::new();
        std::io::BufRead::read_line(replies, &mut line).map_err(|e| e.to_string())?;
        match Reply::decode(&line) {
            Ok(Reply::Reduced(addr)) => Ok(addr),
            Ok(Reply::Error(msg)) => Err(msg),
            Err(line) => Err(format!("unexpected reply from the shim: {line:?}")),
        }
    };
    if let Destination::File(path) = dest {
        // Refused before the capture: the program goes on with a TeleportError.
        if let Err(e) = crate::snapshot::files::check_destination(path) {
            say(Report::Error(e.to_string()));
            return Err(e.into());
        }
    }
    let clock = crate::timing::Clock::start("supervise");
    // A local destination's interpreter starts while we capture: its start-up (tens of
    // milliseconds) overlaps the capture instead of following it. It reads the snapshot
    // from a pipe; if the capture fails it reads nothing and exits quietly.
    let mut early = match dest {
        Destination::Local => match Restore::from_pipe(python).wait_for_go().original(req.pid).named_as_process(req.pid).spawn() {
            Ok(x) => Some(x),
            Err(e) => {
                say(Report::Error(format!("cannot start the new process: {}", spawn_failure(&e))));
                return Err(e.into());
            }
        },
        _ => None,
    };
    let result = capture(req, Some(&mut reducer)).and_then(|(snap, _)| snap.to_bytes());
    clock.mark("snapshot encoded");
    if result.is_err() {
        if let Some(launched) = early.take() {
            launched.abandon();
        }
    }
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            say(Report::Error(e.to_string()));
            return Err(e);
        }
    };
    // Threads passing a shell destination's output on, joined once it ends.
    let mut relays = Vec::new();
    let mut announced = false;
    let mut child = match dest {
        Destination::File(path) => {
            return match crate::snapshot::write_atomically(path, &bytes) {
                Ok(()) => {
                    say(Report::Saved(path.display().to_string()));
                    Ok(())
                }
                Err(e) => {
                    say(Report::Error(e.to_string()));
                    Err(e)
                }
            };
        }
        Destination::Local => {
            let mut launched = early.take().expect("spawned above for a local destination");
            let mut pipe = launched.snapshot_pipe().expect("a restore from a pipe has one");
            // A large snapshot goes through shared memory (a file in /dev/shm the new
            // process reads once and removes): a pipe moves it several times slower.
            let shm = shared_memory_copy(&bytes);
            let sent = match &shm {
                Some(path) => pipe.write_all(format!("{SHM_MARKER}{}", path.display()).as_bytes()),
                None => pipe.write_all(&bytes),
            };
            drop(pipe);
            // The original lets go only once the new process has everything rebuilt.
            let confirmed = match sent {
                Ok(()) => launched.wait_ready().map_err(|why| format!("the new process could not rebuild the program: {why}")),
                Err(e) => Err(format!("cannot send the snapshot to the new process: {e}")),
            };
            if let Some(path) = &shm {
                // Removed by the new process once read; by us if it never got there.
                let _ = std::fs::remove_file(path);
            }
            if let Err(why) = confirmed {
                let _ = launched.child.wait();
                say(Report::Error(why.clone()));
                return Err(Error::Delivery(why));
            }
            // The shim is told first: once told, the original only waits to exit (also
            // if we die now: it then exits, and the new process, seeing no go but the
            // original's end, runs). Told after the go, our death in between would let
            // both run.
            // "Committing" first: a new process that then sees our end waits for the
            // original's; one that sees it before gives up (the original goes on).
            if launched.committing().is_err() {
                let _ = launched.child.wait();
                let why = "the new process ended before the go".to_string();
                say(Report::Error(why.clone()));
                return Err(Error::Delivery(why));
            }
            say(Report::Started(launched.id()));
            // A failure means it died after rebuilding: its status is the original's.
            let _ = launched.go();
            announced = true;
            launched.child
        }
        Destination::Shell(cmd) => match crate::delivery::through_shell(cmd, &bytes) {
            Ok(delivered) => {
                relays = delivered.relays;
                delivered.child
            }
            Err(why) => {
                say(Report::Error(why.clone()));
                return Err(Error::Delivery(why));
            }
        },
    };
    clock.mark("new process started");
    if !announced {
        say(Report::Started(child.id()));
    }
    let code = match child.wait() {
        Ok(status) => status_code(status),
        Err(_) => 1,
    };
    // Its output passed on to the end (bounded: a process it left behind may hold it).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for relay in relays {
        while !relay.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    say(Report::Exit(code));
    Ok(())
}

/// What the shim is told when the new interpreter does not start: the system's reason.
fn spawn_failure(e: &LaunchError) -> String {
    match e {
        LaunchError::Spawn { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// Above this size a snapshot for a local process is handed over in /dev/shm.
const SHM_THRESHOLD: usize = 4 << 20;

fn shared_memory_copy(bytes: &[u8]) -> Option<PathBuf> {
    if bytes.len() < SHM_THRESHOLD || !Path::new("/dev/shm").is_dir() {
        return None;
    }
    let path = PathBuf::from(format!(
        "/dev/shm/pyteleport-{}-{}.snap",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).ok()?;
    if f.write_all(bytes).is_err() {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(path)
}
