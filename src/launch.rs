//! Starting the restore process (`python -c RESTORE_MAIN ...`, the engine in
//! `pyteleport.restore`), the one way teleport, attach and `pyteleport restore` do it:
//! which interpreter, its PYTHONPATH, where it reads the snapshot, its stdio,
//! environment and working directory, and the ready/go handshake.
//!
//! The restore engine's arguments: `--snapshot-fd FD` (read the snapshot from a pipe),
//! else a snapshot file (`--delete`: remove it once read); `--wait-fd G --ready-fd R`:
//! rebuild everything, write `r` (ready) or `e MESSAGE` on R, then run only once a byte
//! arrives on G (end of file: exit without running anything).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

pub use crate::error::{LaunchError, NotReady};
use crate::snapshot::report::{self, Readiness};

/// Exit status as a shell reports it (128 + signal for a killed process).
pub fn status_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The new interpreter's entry point; its arguments follow on the command line.
pub const RESTORE_MAIN: &str = "import sys; from pyteleport.restore import main; sys.exit(main(sys.argv[1:]))";

/// The interpreter a snapshot of CPython `major.minor` is resumed in, and a directory to
/// put first on `PYTHONPATH`. `explicit` (`--python`) when given. Otherwise the program's
/// own interpreter (`exe`: its packages stay importable) with the site-packages this
/// binary was installed into first on the path, so that the restore engine is the one
/// that matches this binary; when that site is for another version, an error saying so;
/// when this binary is not installed in a site (a development build), `exe` as it is.
pub fn interpreter_with_pyteleport(major: u8, minor: u8, exe: &str, explicit: Option<&str>) -> Result<(String, Option<PathBuf>), LaunchError> {
    if let Some(p) = explicit {
        return Ok((p.to_string(), None));
    }
    let want = format!("python{major}.{minor}");
    // <site>/pyteleport/_bin/pyteleport, with <site> = <prefix>/lib/pythonX.Y/site-packages
    let me = std::env::current_exe().ok();
    // The snapshot's interpreter when it is here; on another machine (or after the venv
    // went away) the one of this install, else `pythonX.Y` on PATH.
    let present = !exe.is_empty() && Path::new(exe).is_file();
    let site = me.as_deref().and_then(|m| m.ancestors().nth(3)).filter(|s| s.join("pyteleport").join("__init__.py").exists());
    let Some(site) = site else {
        return Ok((if present { exe.to_string() } else { on_path(&want).unwrap_or_else(|| exe.to_string()) }, None));
    };
    let lib = site.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    if lib != want {
        return Err(LaunchError::SiteForOtherVersion { installed: lib.to_string(), major, minor });
    }
    let exe = if present {
        exe.to_string()
    } else {
        site.ancestors()
            .nth(3)
            .map(|venv| venv.join("bin").join("python"))
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| exe.to_string())
    };
    Ok((exe, Some(site.to_path_buf())))
}

/// `name` found on PATH, as a shell would.
fn on_path(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// Put `site` first on the PYTHONPATH of `cmd`, in front of `own` (the program's own
/// value), which the restore engine puts back (`PYTELEPORT_PROGRAM_PYTHONPATH`: "=value",
/// or empty when it had none).
fn put_site_first(cmd: &mut Command, site: &Path, own: Option<String>) {
    cmd.env("PYTELEPORT_PROGRAM_PYTHONPATH", own.as_ref().map(|v| format!("={v}")).unwrap_or_default());
    cmd.env(
        "PYTHONPATH",
        match own.as_deref() {
            Some(v) if !v.is_empty() => format!("{}:{v}", site.display()),
            _ => site.display().to_string(),
        },
    );
}

/// `bytes` in an anonymous memory file (memfd), positioned at its start: nothing in the
/// file system to remove afterwards, whatever happens to the process reading it.
fn memory_snapshot(bytes: &[u8]) -> crate::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(c"pyteleport-snapshot", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| crate::Error::Io { context: "cannot create an in-memory file for the snapshot".into(), source: e.into() })?;
    let mut f = File::from(fd);
    f.write_all(bytes).map_err(|source| crate::Error::Io { context: "cannot write the snapshot to an in-memory file".into(), source })?;
    std::io::Seek::rewind(&mut f).map_err(|source| crate::Error::Io { context: "cannot rewind the in-memory snapshot".into(), source })?;
    Ok(OwnedFd::from(f))
}

/// Who a process runs as, from /proc/PID/status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credentials {
    uids: [libc::uid_t; 3],
    gids: [libc::gid_t; 3],
    groups: Vec<libc::gid_t>,
}

impl Credentials {
    fn of(pid: i32) -> Option<Credentials> {
        Credentials::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    fn ours() -> Option<Credentials> {
        Credentials::parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    fn parse(status: &str) -> Option<Credentials> {
        let field = |name: &str| -> Option<Vec<u32>> {
            let line = status.lines().find_map(|l| l.strip_prefix(name))?;
            line.split_whitespace().map(|v| v.parse().ok()).collect()
        };
        let (uids, gids) = (field("Uid:")?, field("Gid:")?);
        Some(Credentials {
            uids: [*uids.first()?, *uids.get(1)?, *uids.get(2)?],
            gids: [*gids.first()?, *gids.get(1)?, *gids.get(2)?],
            groups: field("Groups:").unwrap_or_default(),
        })
    }

    /// In the child, before exec: groups first, then gids, then uids (after which we
    /// could no longer change the others).
    fn become_them(&self) -> std::io::Result<()> {
        let check = |rc: libc::c_int| if rc == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
        // SAFETY: plain system calls on integers and on `groups`, a live slice.
        unsafe {
            check(libc::setgroups(self.groups.len(), self.groups.as_ptr()))?;
            check(libc::setresgid(self.gids[0], self.gids[1], self.gids[2]))?;
            check(libc::setresuid(self.uids[0], self.uids[1], self.uids[2]))
        }
    }
}

enum Source {
    /// A file, removed by the restore process once read.
    File(PathBuf),
    /// A pipe whose write end the caller gets (`Launched::snapshot_pipe`).
    Pipe,
    /// A descriptor the new process reads the whole snapshot from (an in-memory file).
    Fd(OwnedFd),
}

/// How to start one restore process.
pub struct Restore {
    python: String,
    source: Source,
    site: Option<PathBuf>,
    stdio: Option<[OwnedFd; 3]>,
    env: Option<Vec<(OsString, OsString)>>,
    cwd: Option<PathBuf>,
    handshake: bool,
    /// Confirm on stdout and wait for the go on stdin (a shell destination's restore).
    confirm_on_stdio: bool,
    /// The process the program leaves: no go but its end means the go was lost with the
    /// sender (`Restore::original`).
    original: Option<i32>,
    /// The program's command line, shown after `--` (`Restore::named_as`).
    program_args: Vec<OsString>,
    /// The user and groups to run as (`Restore::as_user_of`).
    credentials: Option<Credentials>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(LaunchError::Pipe)
}

impl Restore {
    /// Resume the snapshot in file `path` (removed by the new process once read).
    pub fn from_file(python: impl Into<String>, path: impl Into<PathBuf>) -> Restore {
        Restore::new(python.into(), Source::File(path.into()))
    }

    /// Resume a snapshot the caller writes to a pipe once it has it: the interpreter's
    /// start-up overlaps the capture. If nothing is written it exits quietly.
    pub fn from_pipe(python: impl Into<String>) -> Restore {
        Restore::new(python.into(), Source::Pipe)
    }

    /// Resume `bytes`, handed over in an in-memory file: nothing in the file system for
    /// another user to read or for us to leave behind, and readable by the new process
    /// whatever user it runs as.
    pub fn from_memory(python: impl Into<String>, bytes: &[u8]) -> crate::Result<Restore> {
        Ok(Restore::new(python.into(), Source::Fd(memory_snapshot(bytes)?)))
    }

    fn new(python: String, source: Source) -> Restore {
        Restore {
            python,
            source,
            site: None,
            stdio: None,
            env: None,
            cwd: None,
            handshake: false,
            confirm_on_stdio: false,
            original: None,
            program_args: Vec::new(),
            credentials: None,
        }
    }

    /// Put `site` (pyteleport's site-packages) first on PYTHONPATH, in front of the
    /// program's own value, which the restore engine puts back.
    pub fn site_first(mut self, site: Option<PathBuf>) -> Restore {
        self.site = site;
        self
    }

    /// Standard input, output and error (default: inherited).
    pub fn stdio(mut self, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Restore {
        self.stdio = Some([stdin, stdout, stderr]);
        self
    }

    /// Exactly this environment (default: inherited).
    pub fn environment(mut self, vars: Vec<(OsString, OsString)>) -> Restore {
        self.env = Some(vars);
        self
    }

    pub fn current_dir(mut self, dir: PathBuf) -> Restore {
        self.cwd = Some(dir);
        self
    }

    /// Rebuild everything, say whether that worked, and run only once told to go
    /// (`Launched::wait_ready`, `Launched::go`).
    pub fn wait_for_go(mut self) -> Restore {
        self.handshake = true;
        self
    }

    /// The process the program is moved from. When the sender dies between committing the
    /// move and the go, the new process sees the end of the go pipe and then that
    /// process ending (ended by the kernel or by the shim, never running on): it runs
    /// then, so the program runs exactly once.
    pub fn original(mut self, pid: i32) -> Restore {
        self.original = Some(pid);
        self
    }

    /// Show the program's command line (`script.py ARGS`) at the end of the new process's
    /// own, after `--` (the restore engine ignores it): `ps` and `pgrep -f script.py` find
    /// the job where it now runs.
    pub fn named_as(mut self, args: Vec<OsString>) -> Restore {
        self.program_args = args;
        self
    }

    /// The same, from the command line of process `pid` (its interpreter left out).
    pub fn named_as_process(self, pid: i32) -> Restore {
        use std::os::unix::ffi::OsStringExt;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<OsString> = cmdline.split(|&b| b == 0).skip(1).filter(|a| !a.is_empty()).map(|a| OsString::from_vec(a.to_vec())).collect();
        self.named_as(args)
    }

    /// Run as the user process `pid` runs as (real, effective and saved uids and gids, and
    /// its supplementary groups): root moving another user's job must not hand it root.
    /// Nothing changes when they are ours already.
    pub fn as_user_of(mut self, pid: i32) -> Restore {
        self.credentials = Credentials::of(pid).filter(|c| Some(c.clone()) != Credentials::ours());
        self
    }

    /// Say on stdout that everything is rebuilt and run once stdin says go: the sender
    /// of a snapshot through a shell command waits for it (`report::CONFIRM_PREAMBLE`).
    pub fn confirm_on_stdio(mut self) -> Restore {
        self.confirm_on_stdio = true;
        self
    }

    /// The command line and environment; `fds`: the restore engine's pipe ends in the
    /// child (go, ready, snapshot), kept open across exec.
    fn command(&mut self, go_ready: Option<(RawFd, RawFd)>, snapshot_fd: Option<RawFd>) -> Command {
        let mut cmd = Command::new(&self.python);
        // `-c` rather than `-m`: runpy costs milliseconds of the new process's start.
        cmd.arg("-c").arg(RESTORE_MAIN);
        if matches!(self.source, Source::File(_)) {
            cmd.arg("--delete");
        }
        if let Some((go, ready)) = go_ready {
            cmd.arg("--wait-fd").arg(go.to_string()).arg("--ready-fd").arg(ready.to_string());
        }
        if self.confirm_on_stdio {
            cmd.arg("--confirm-stdio");
        }
        if let Some(pid) = self.original {
            cmd.arg("--original-pid").arg(pid.to_string());
        }
        let snapshot_fd = match &self.source {
            Source::Fd(fd) => Some(fd.as_raw_fd()),
            _ => snapshot_fd,
        };
        match (&self.source, snapshot_fd) {
            (Source::File(path), _) => {
                cmd.arg(path);
            }
            (Source::Pipe | Source::Fd(_), Some(fd)) => {
                cmd.arg("--snapshot-fd").arg(fd.to_string());
            }
            (Source::Pipe | Source::Fd(_), None) => unreachable!("a pipe source has a pipe"),
        }
        if !self.program_args.is_empty() {
            cmd.arg("--").args(&self.program_args);
        }
        let inherit: Vec<RawFd> = go_ready.into_iter().flat_map(|(g, r)| [g, r]).chain(snapshot_fd).collect();
        if !inherit.is_empty() {
            // SAFETY: only fcntl on our own descriptors between fork and exec.
            unsafe {
                // Keep the pipes' child ends open in the child (they are close-on-exec).
                cmd.pre_exec(move || {
                    for &fd in &inherit {
                        let flags = libc::fcntl(fd, libc::F_GETFD);
                        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                    }
                    Ok(())
                });
            }
        }
        if let Some(c) = self.credentials.clone() {
            // SAFETY: between fork and exec only async-signal-safe system calls on values
            // prepared before the fork.
            unsafe {
                cmd.pre_exec(move || c.become_them());
            }
        }
        if let Some([stdin, stdout, stderr]) = self.stdio.take() {
            cmd.stdin(Stdio::from(stdin)).stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr));
        }
        let own_pythonpath = match &self.env {
            Some(vars) => {
                cmd.env_clear();
                cmd.envs(vars.iter().map(|(k, v)| (k, v)));
                vars.iter().rev().find(|(k, _)| k == "PYTHONPATH").map(|(_, v)| v.to_string_lossy().into_owned())
            }
            None => std::env::var("PYTHONPATH").ok(),
        };
        if let Some(site) = &self.site {
            put_site_first(&mut cmd, site, own_pythonpath);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Start the restore process.
    pub fn spawn(mut self) -> Result<Launched, LaunchError> {
        let handshake = if self.handshake { Some((pipe()?, pipe()?)) } else { None };
        let snapshot = if matches!(self.source, Source::Pipe) {
            let (read_end, write_end) = pipe()?;
            // A larger pipe: a big snapshot goes through in fewer round trips.
            // SAFETY: fcntl on a descriptor we own.
            unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
            Some((read_end, write_end))
        } else {
            None
        };
        let go_ready = handshake.as_ref().map(|((go_read, _), (_, ready_write))| (go_read.as_raw_fd(), ready_write.as_raw_fd()));
        let mut cmd = self.command(go_ready, snapshot.as_ref().map(|(r, _)| r.as_raw_fd()));
        let child = cmd.spawn().map_err(|source| LaunchError::Spawn { python: self.python.clone(), source })?;
        // The child's ends close here, with the command.
        drop(cmd);
        let (go, ready) = match handshake {
            Some(((_, go_write), (ready_read, _))) => (Some(go_write), Some(ready_read)),
            None => (None, None),
        };
        Ok(Launched { child, snapshot: snapshot.map(|(_, w)| File::from(w)), go, ready })
    }

    /// Replace this process by the restore process (returns only on failure).
    pub fn exec(mut self) -> LaunchError {
        let source = self.command(None, None).exec();
        LaunchError::Exec { python: self.python.clone(), source }
    }
}

/// How long a new process told not to run may take to exit before it is killed.
const GIVE_UP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A started restore process.
pub struct Launched {
    pub child: Child,
    snapshot: Option<File>,
    go: Option<OwnedFd>,
    ready: Option<OwnedFd>,
}

impl Launched {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The pipe the snapshot goes to (`Restore::from_pipe`), taken once.
    pub fn snapshot_pipe(&mut self) -> Option<File> {
        self.snapshot.take()
    }

    /// Wait until the new process has rebuilt the state (`Restore::wait_for_go`). When it
    /// cannot, it has exited or is told to (nothing of the program ran) and is reaped.
    pub fn wait_ready(&mut self) -> Result<(), NotReady> {
        self.wait_ready_unless(&|| false)
    }

    /// `wait_ready`, giving up as soon as `cancelled()` says so (checked every 100 ms):
    /// then `NotReady::Cancelled`, and the caller abandons the new process.
    pub fn wait_ready_unless(&mut self, cancelled: &dyn Fn() -> bool) -> Result<(), NotReady> {
        let mut answer = Vec::new();
        if let Some(ready) = self.ready.take() {
            let mut ready = File::from(ready);
            let mut chunk = [0u8; 4096];
            loop {
                let mut poll = libc::pollfd { fd: ready.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: poll(2) on one pollfd that lives on this stack frame.
                let n = unsafe { libc::poll(&mut poll, 1, 100) };
                if n == 0 || (n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted) {
                    if cancelled() {
                        return Err(NotReady::Cancelled);
                    }
                    continue;
                }
                match ready.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => answer.extend_from_slice(&chunk[..k]),
                }
            }
        }
        let readiness = Readiness::decode(&answer);
        if readiness == Some(Readiness::Ready) {
            return Ok(());
        }
        self.go = None; // it exits without running anything
        let status = self.reap_within(GIVE_UP_GRACE).map(status_code);
        Err(match readiness {
            Some(Readiness::Failed(why)) => NotReady::Refused(why),
            _ => NotReady::Exited(status.unwrap_or(-1)),
        })
    }

    /// Wait for the new process, told not to run, to exit; past `grace` it is killed
    /// (ours, and it ran nothing of the program: it only had not finished giving up).
    fn reap_within(&mut self, grace: std::time::Duration) -> Option<ExitStatus> {
        let until = std::time::Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if std::time::Instant::now() < until => std::thread::sleep(std::time::Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.child.kill();
                    return self.child.wait().ok();
                }
                Err(_) => return None,
            }
        }
    }

    /// Say the move is about to be committed (`report::COMMITTING`): from now on the
    /// sender's death means the original ends, and the new process then runs.
    pub fn committing(&mut self) -> Result<(), LaunchError> {
        match &self.go {
            Some(go) => (&File::from(go.try_clone().map_err(LaunchError::Go)?)).write_all(report::COMMITTING).map_err(LaunchError::Go),
            None => Ok(()),
        }
    }

    /// Let the new process run the program.
    pub fn go(&mut self) -> Result<(), LaunchError> {
        match self.go.take() {
            Some(go) => File::from(go).write_all(report::GO).map_err(LaunchError::Go),
            None => Ok(()),
        }
    }

    /// Give up: it gets no snapshot (or no go) and exits without running anything.
    pub fn abandon(mut self) {
        self.snapshot = None;
        self.go = None;
        self.ready = None;
        self.reap_within(GIVE_UP_GRACE);
    }
}

/// `pyteleport restore`: replace this process by an interpreter resuming `snapshot_bytes`
/// (read from an in-memory file: once this process is replaced nothing is left to remove
/// a temporary file, should the interpreter fail before reading it). Returns only on
/// failure. `confirm`: the sender waits for a confirmation on stdout
/// (`report::CONFIRM_PREAMBLE`). `program_args`: the program's `sys.argv`, shown on the
/// new process's command line.
pub fn restore_here(python: &str, site: Option<PathBuf>, snapshot_bytes: &[u8], confirm: bool, program_args: &[String]) -> crate::Error {
    let fd = match memory_snapshot(snapshot_bytes) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut restore = Restore::new(python.to_string(), Source::Fd(fd)).site_first(site).named_as(program_args.iter().map(OsString::from).collect());
    if confirm {
        restore = restore.confirm_on_stdio();
    }
    restore.exec().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn env(cmd: &Command, name: &str) -> Option<String> {
        cmd.get_envs().find(|(k, _)| *k == name).and_then(|(_, v)| v).map(|v| v.to_string_lossy().into_owned())
    }

    #[test]
    fn the_restore_engine_gets_the_snapshot_and_handshake_arguments() {
        let mut r = Restore::from_file("py", "/tmp/s.snap");
        assert_eq!(args(&r.command(None, None)), ["-c", RESTORE_MAIN, "--delete", "/tmp/s.snap"]);
        let mut r2 = Restore::from_file("py", "/tmp/s.snap").wait_for_go();
        assert_eq!(args(&r2.command(Some((5, 6)), None)), ["-c", RESTORE_MAIN, "--delete", "--wait-fd", "5", "--ready-fd", "6", "/tmp/s.snap"]);
        let mut r3 = Restore::from_pipe("py");
        assert_eq!(args(&r3.command(None, Some(7))), ["-c", RESTORE_MAIN, "--snapshot-fd", "7"]);
        assert_eq!(r.command(None, None).get_program(), "py");
    }

    #[test]
    fn an_in_memory_snapshot_is_read_through_its_descriptor() {
        let fd = memory_snapshot(b"abc").unwrap();
        let raw = fd.as_raw_fd();
        let mut r = Restore::new("py".into(), Source::Fd(fd));
        assert_eq!(args(&r.command(None, None)), ["-c", RESTORE_MAIN, "--snapshot-fd", &raw.to_string()]);
    }

    #[test]
    fn the_site_goes_in_front_of_the_programs_own_pythonpath() {
        let vars = vec![("PYTHONPATH".into(), "/own".into()), ("HOME".into(), "/h".into())];
        let mut r = Restore::from_file("py", "/s").site_first(Some("/site".into())).environment(vars);
        let cmd = r.command(None, None);
        assert_eq!(env(&cmd, "PYTHONPATH").as_deref(), Some("/site:/own"));
        assert_eq!(env(&cmd, "PYTELEPORT_PROGRAM_PYTHONPATH").as_deref(), Some("=/own"));
        assert_eq!(env(&cmd, "HOME").as_deref(), Some("/h"));
        // A program without PYTHONPATH gets it back unset.
        let mut r = Restore::from_file("py", "/s").site_first(Some("/site".into())).environment(vec![]);
        let cmd = r.command(None, None);
        assert_eq!(env(&cmd, "PYTHONPATH").as_deref(), Some("/site"));
        assert_eq!(env(&cmd, "PYTELEPORT_PROGRAM_PYTHONPATH").as_deref(), Some(""));
        // Without a site nothing is changed.
        let mut r = Restore::from_pipe("py");
        assert_eq!(env(&r.command(None, Some(3)), "PYTHONPATH"), None);
    }

    #[test]
    fn a_restore_that_is_not_ready_says_why() {
        // `sh` stands in for the interpreter: it answers on the ready pipe and exits.
        let null = || OwnedFd::from(std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").unwrap());
        let mut launched = Restore::from_file("/bin/sh", "/nonexistent").wait_for_go().stdio(null(), null(), null()).spawn().unwrap();
        match launched.wait_ready() {
            Err(NotReady::Exited(code)) => assert_ne!(code, 0),
            other => panic!("{other:?}"),
        }
    }
}
