//! The attach tracer outlives the command that started it.
//!
//! While a breakpoint's SIGTRAP stop is being turned into an event stop, and while the
//! original waits for the new process, the tracer must not die: the kernel would deliver
//! the SIGTRAP to the untraced target (killing it), or kill the stopped original. So
//! `pyteleport attach` forks, and the child, in a session of its own (no terminal or
//! process-group signal reaches it), does all the tracing while the parent only waits
//! and passes its exit status on. If the parent is killed, the child notices (its parent
//! changes) and cancels at the next safe moment: the target goes on untouched, or, once
//! the new process has been told to go, the move completes.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// Pid of the command this tracer works for; 0 when not running as a guarded tracer.
static ATTACHER: AtomicI32 = AtomicI32::new(0);
static OUTPUT_RELEASED: AtomicBool = AtomicBool::new(false);

/// Fork the tracer. In the parent: wait for the child and return `Some(exit code)`. In
/// the child: return `None` and go on with the work.
pub fn fork_tracer() -> std::io::Result<Option<i32>> {
    let me = std::process::id() as i32;
    // SAFETY: called before this process starts any thread (the CLI is single-threaded
    // until here), so the child is a complete copy.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            ATTACHER.store(me, Ordering::Release);
            let _ = nix::unistd::setsid();
            Ok(None)
        }
        nix::unistd::ForkResult::Parent { child } => loop {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(Some(code)),
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return Ok(Some(128 + sig as i32)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        },
    }
}

/// True once the command this tracer works for has died: time to cancel.
pub fn attacher_gone() -> bool {
    let attacher = ATTACHER.load(Ordering::Acquire);
    attacher != 0 && nix::unistd::getppid().as_raw() != attacher
}

/// The pid of the command this tracer works for, if guarded.
pub fn attacher() -> Option<i32> {
    Some(ATTACHER.load(Ordering::Acquire)).filter(|&p| p != 0)
}

/// Once nobody is left to read our messages, let go of the command's stdout and stderr
/// (a pipe reader waiting for their end must not wait for us).
pub fn release_output_if_orphaned() {
    if attacher_gone() && !OUTPUT_RELEASED.swap(true, Ordering::AcqRel) {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::unix::io::AsRawFd;
            // SAFETY: dup2 onto our own standard descriptors.
            unsafe {
                libc::dup2(null.as_raw_fd(), 1);
                libc::dup2(null.as_raw_fd(), 2);
            }
        }
    }
}

/// Wait for `child` to exit, letting go of our output if the attacher dies meanwhile.
pub fn wait_child(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor we own (or -1).
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::c_int, 0) } as i32;
    loop {
        if let Some(status) = child.try_wait()? {
            if pidfd >= 0 {
                // SAFETY: our own descriptor from pidfd_open, closed once.
                unsafe { libc::close(pidfd) };
            }
            return Ok(status);
        }
        release_output_if_orphaned();
        if pidfd >= 0 {
            let mut fds = [libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 }];
            // SAFETY: one valid pollfd.
            // SAFETY: `fds` is a live array of one pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, 200) };
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
