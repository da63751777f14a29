//! Moving a captured process: write the snapshot where it was asked to go and start the
//! new interpreter there, reporting to the shim over a pipe.
//!
//! Report protocol (one line each, on `--report-fd`): `error MESSAGE`, `saved PATH`,
//! `started PID`, then `exit CODE` when the new process ends.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::supervisor::{capture, CaptureRequest};

pub enum Destination {
    Local,
    File(PathBuf),
    Shell(String),
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Exit status as a shell reports it (128 + signal for a killed process).
pub fn status_code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A private temporary file holding `bytes`.
fn temp_snapshot(bytes: &[u8]) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!("pyteleport-{}-{attempt}.snap", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                f.write_all(bytes).map_err(|source| Error::Io { context: format!("cannot write {}", path.display()), source })?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::Io { context: format!("cannot create a file in {}", dir.display()), source }),
        }
    }
    Err(Error::Snapshot("cannot create a temporary snapshot file".into()))
}

/// The new interpreter's entry point; its arguments follow on the command line.
pub const RESTORE_MAIN: &str = "import sys; from pyteleport.restore import main; sys.exit(main(sys.argv[1:]))";

fn restore_command(python: &str, snapshot: &Path) -> Command {
    let mut cmd = Command::new(python);
    // `-c` rather than `-m`: runpy costs milliseconds of the new process's start.
    cmd.arg("-c").arg(RESTORE_MAIN).arg("--delete").arg(snapshot);
    cmd
}

/// Capture `req`, then deliver. Returns the supervisor's exit code; every outcome is
/// also reported to the shim.
pub fn supervise(req: &CaptureRequest, report_fd: i32, reply_fd: Option<i32>, python: &str, dest: &Destination) -> i32 {
    // The fds were handed over by the shim for this purpose only.
    let report = std::cell::RefCell::new(unsafe { std::fs::File::from_raw_fd(report_fd) });
    let say = |line: String| {
        let mut r = report.borrow_mut();
        let _ = writeln!(r, "{line}");
        let _ = r.flush();
    };
    let mut replies = reply_fd.map(|fd| std::io::BufReader::new(unsafe { std::fs::File::from_raw_fd(fd) }));
    // `reduce ADDR...` asks the shim to reduce objects; it answers with the address of a
    // list of reduce tuples (kept alive until it is told the outcome), or `error MESSAGE`.
    let mut reducer = |addrs: &[u64]| -> std::result::Result<u64, String> {
        let replies = replies.as_mut().ok_or("no shim to reduce objects")?;
        say(format!("reduce {}", addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")));
        let mut line = String::new();
        std::io::BufRead::read_line(replies, &mut line).map_err(|e| e.to_string())?;
        let line = line.trim();
        if let Some(msg) = line.strip_prefix("error ") {
            return Err(msg.to_string());
        }
        line.parse().map_err(|_| format!("unexpected reply from the shim: {line:?}"))
    };
    let clock = crate::timing::Clock::start("supervise");
    // A local destination's interpreter starts while we capture: its start-up (tens of
    // milliseconds) overlaps the capture instead of following it. It reads the snapshot
    // from a pipe; if the capture fails it reads nothing and exits quietly.
    let mut early = match dest {
        Destination::Local => match spawn_waiting_restore(python) {
            Ok(x) => Some(x),
            Err(e) => {
                say(format!("error cannot start the new process: {e}"));
                return 1;
            }
        },
        _ => None,
    };
    let result = capture(req, Some(&mut reducer)).and_then(|(snap, _)| snap.to_bytes());
    clock.mark("snapshot encoded");
    if result.is_err() {
        if let Some((mut child, pipe)) = early.take() {
            drop(pipe);
            let _ = child.wait();
        }
    }
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            say(format!("error {}", one_line(&e.to_string())));
            return 1;
        }
    };
    let child = match dest {
        Destination::File(path) => {
            return match crate::snapshot::write_atomically(path, &bytes) {
                Ok(()) => {
                    say(format!("saved {}", path.display()));
                    0
                }
                Err(e) => {
                    say(format!("error {}", one_line(&e.to_string())));
                    1
                }
            };
        }
        Destination::Local => {
            let (child, pipe) = early.take().expect("spawned above for a local destination");
            let mut pipe = std::fs::File::from(pipe);
            // A large snapshot goes through shared memory (a file in /dev/shm the new
            // process reads once and removes): a pipe moves it several times slower.
            let shm = shared_memory_copy(&bytes);
            let sent = match &shm {
                Some(path) => pipe.write_all(format!("{SHM_MARKER}{}", path.display()).as_bytes()),
                None => pipe.write_all(&bytes),
            };
            match sent {
                Ok(()) => {
                    drop(pipe);
                    // Removed by the new process once read; by us if it never gets there.
                    Ok((child, shm))
                }
                Err(e) => Err(e),
            }
        }
        Destination::Shell(cmd) => Command::new("/bin/sh").arg("-c").arg(cmd).stdin(Stdio::piped()).spawn().map(|mut c| {
            if let Some(mut stdin) = c.stdin.take() {
                let _ = stdin.write_all(&bytes);
            }
            (c, None)
        }),
    };
    let (mut child, temp) = match child {
        Ok(c) => c,
        Err(e) => {
            say(format!("error cannot start the new process: {e}"));
            return 1;
        }
    };
    clock.mark("new process started");
    say(format!("started {}", child.id()));
    let code = match child.wait() {
        Ok(status) => status_code(status),
        Err(_) => 1,
    };
    if let Some(p) = temp {
        // The new process deletes it once read; this covers one that died before.
        let _ = std::fs::remove_file(p);
    }
    say(format!("exit {code}"));
    0
}

/// Starts the message on the snapshot pipe that names a file holding the snapshot.
const SHM_MARKER: &str = "\0PYTELEPORT-SHM:";

/// Above this size a snapshot for a local process is handed over in /dev/shm.
const SHM_THRESHOLD: usize = 4 << 20;

fn shared_memory_copy(bytes: &[u8]) -> Option<PathBuf> {
    if bytes.len() < SHM_THRESHOLD || !Path::new("/dev/shm").is_dir() {
        return None;
    }
    let path = PathBuf::from(format!("/dev/shm/pyteleport-{}-{}.snap", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).ok()?;
    if f.write_all(bytes).is_err() {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(path)
}

/// Start the restore interpreter now, reading its snapshot from a pipe (returned).
fn spawn_waiting_restore(python: &str) -> std::io::Result<(std::process::Child, std::os::unix::io::OwnedFd)> {
    use std::os::unix::io::AsRawFd;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let fd = read_end.as_raw_fd();
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(RESTORE_MAIN).arg("--snapshot-fd").arg(fd.to_string());
    unsafe {
        // Keep the read end open across exec (pipes are made close-on-exec).
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
    // A larger pipe: a big snapshot goes through in fewer round trips.
    unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    let child = cmd.spawn()?;
    drop(read_end);
    Ok((child, write_end))
}

/// `pyteleport restore`: replace this process by the interpreter resuming the snapshot.
/// The interpreter a snapshot of CPython `major.minor` is resumed in, and a directory to
/// put first on `PYTHONPATH`. `--python` when given. Otherwise the program's own
/// interpreter (`exe`: its packages stay importable) with the site-packages this binary
/// was installed into first on the path, so that the restore engine is the one that
/// matches this binary; when that site is for another version, an error saying so; when
/// this binary is not installed in a site (a development build), `exe` as it is.
pub fn interpreter_with_pyteleport(major: u8, minor: u8, exe: &str, explicit: Option<&str>) -> std::result::Result<(String, Option<std::path::PathBuf>), String> {
    if let Some(p) = explicit {
        return Ok((p.to_string(), None));
    }
    let want = format!("python{major}.{minor}");
    // <site>/pyteleport/_bin/pyteleport, with <site> = <prefix>/lib/pythonX.Y/site-packages
    let me = std::env::current_exe().ok();
    let site = me.as_deref().and_then(|m| m.ancestors().nth(3)).filter(|s| s.join("pyteleport").join("__init__.py").exists());
    let Some(site) = site else { return Ok((exe.to_string(), None)) };
    let lib = site.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    if lib != want {
        return Err(format!(
            "this pyteleport is installed for {lib}, the program runs CPython {major}.{minor}: pass --python (a python{major}.{minor} that can import pyteleport)"
        ));
    }
    let exe = if exe.is_empty() { site.ancestors().nth(3).map(|venv| venv.join("bin").join("python").display().to_string()).unwrap_or_default() } else { exe.to_string() };
    Ok((exe, Some(site.to_path_buf())))
}

/// Put `site` first on the PYTHONPATH of `cmd`, in front of `own` (the program's own
/// value), which the restore engine puts back (`PYTELEPORT_PROGRAM_PYTHONPATH`: "=value",
/// or empty when it had none).
pub fn put_site_first(cmd: &mut Command, site: &std::path::Path, own: Option<String>) {
    cmd.env("PYTELEPORT_PROGRAM_PYTHONPATH", own.as_ref().map(|v| format!("={v}")).unwrap_or_default());
    cmd.env("PYTHONPATH", match own.as_deref() {
        Some(v) if !v.is_empty() => format!("{}:{v}", site.display()),
        _ => site.display().to_string(),
    });
}

pub fn restore_here(python: &str, site: Option<&std::path::Path>, snapshot_bytes: &[u8]) -> std::result::Result<i32, String> {
    let path = temp_snapshot(snapshot_bytes).map_err(|e| e.to_string())?;
    let mut cmd = restore_command(python, &path);
    if let Some(site) = site {
        put_site_first(&mut cmd, site, std::env::var("PYTHONPATH").ok());
    }
    let err = cmd.exec();
    let _ = std::fs::remove_file(&path);
    Err(format!("cannot run {python}: {err}"))
}
