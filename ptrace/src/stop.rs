//! Stopping every thread of a process with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`
//! and letting it go again.
//!
//! Invariant: a target we stopped is never left stopped. [`StoppedProcess`]
//! detaches on drop; [`install_detach_on_fatal_signals`] covers SIGINT,
//! SIGTERM, SIGHUP and SIGQUIT; on SIGKILL (or any other death of the tracer)
//! the kernel detaches the tracees and lets them run. We never set
//! `PTRACE_O_EXITKILL`, which would do the opposite.
//!
//! ptrace requests are only accepted from the very thread that attached, so
//! [`StoppedProcess`] is deliberately `!Send`.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{check_pid, Error, Result};
use crate::threads::{list_threads, process_exists, thread_state, tracer_pid};

/// How long [`StoppedProcess::stop`] waits for all threads to reach a ptrace-stop.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long detaching waits for a seized thread that has not stopped yet
/// (a thread can only be detached while it is in a ptrace-stop).
const DETACH_GRACE: Duration = Duration::from_secs(2);

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments, touches no memory of ours and cannot fail; its
    // result (a pid_t) fits in i32.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The requests [`ptrace_raw`] makes: for none of them does the kernel read or write
/// our memory through `addr` or `data` (`data` is an option mask or a signal number).
/// Requests such as PEEKDATA or GETREGS, which store through `data`, cannot be named,
/// which keeps `ptrace_raw` a safe function.
#[derive(Debug, Clone, Copy)]
enum Request {
    Seize,
    Interrupt,
    Cont,
    Detach,
}

/// Raw ptrace for requests that take `data` as an integer. A raw syscall
/// (not the glibc wrapper) so the signal handler can use it too.
fn ptrace_raw(request: Request, tid: i32, data: libc::c_long) -> std::result::Result<(), Errno> {
    let request = match request {
        Request::Seize => libc::PTRACE_SEIZE,
        Request::Interrupt => libc::PTRACE_INTERRUPT,
        Request::Cont => libc::PTRACE_CONT,
        Request::Detach => libc::PTRACE_DETACH,
    } as libc::c_long;
    // SAFETY: for SEIZE, INTERRUPT, CONT and DETACH the kernel ignores `addr` (0 here) and
    // takes `data` as a value (options, signal number), never as a pointer, so no memory
    // of ours is read or written; any tid is acceptable (failure is reported as errno).
    let rc = unsafe { libc::syscall(libc::SYS_ptrace, request, tid as libc::c_long, 0 as libc::c_long, data) };
    if rc == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn detach_raw(tid: i32, sig: i32) -> std::result::Result<(), Errno> {
    ptrace_raw(Request::Detach, tid, sig as libc::c_long)
}

/// Outcome of one non-blocking wait on a tracee.
enum WaitResult {
    NothingYet,
    /// In a ptrace-stop; `Some(sig)` for a signal-delivery-stop whose signal
    /// must be re-injected when we let the thread go.
    Stopped(Option<i32>),
    Gone,
}

fn wait_nohang(tid: i32) -> std::result::Result<WaitResult, Errno> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a live, writable c_int for the duration of the call, the only
        // memory waitpid writes; WNOHANG keeps it from blocking.
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if rc == 0 {
            return Ok(WaitResult::NothingYet);
        }
        if rc == -1 {
            match Errno::last() {
                Errno::EINTR => continue,
                // Not (or no longer) our tracee: it exited and was reaped elsewhere.
                Errno::ECHILD => return Ok(WaitResult::Gone),
                e => return Err(e),
            }
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Ok(WaitResult::Gone);
        }
        if libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            let event = status >> 16;
            // event 0 is a signal-delivery-stop: the signal is held back until
            // we resume, so remember it. Event stops (our interrupt, or a
            // group-stop) carry nothing to re-inject.
            return Ok(WaitResult::Stopped((event == 0 && sig != 0).then_some(sig)));
        }
        // WIFCONTINUED and the like: not a stop, keep waiting.
        return Ok(WaitResult::NothingYet);
    }
}

// ---------------------------------------------------------------------------
// Registry of seized threads, readable from a signal handler.
// ---------------------------------------------------------------------------

/// Maximum number of threads (over all StoppedProcess values) that the
/// fatal-signal handler can detach. Threads beyond it are still detached on
/// drop and by the kernel when we die, but a pending signal might be lost.
pub const MAX_TRACKED_THREADS: usize = 4096;

/// One seized thread. `tid` is 0 when free, -1 while being filled in.
struct Slot {
    tid: AtomicI32,
    tracer: AtomicI32,
    sig: AtomicI32,
}

impl Slot {
    const fn new() -> Self {
        Slot { tid: AtomicI32::new(0), tracer: AtomicI32::new(0), sig: AtomicI32::new(0) }
    }
}

static SLOTS: [Slot; MAX_TRACKED_THREADS] = [const { Slot::new() }; MAX_TRACKED_THREADS];

fn register(tid: i32, tracer: i32) -> Option<usize> {
    for (i, slot) in SLOTS.iter().enumerate() {
        if slot.tid.compare_exchange(0, -1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            slot.tracer.store(tracer, Ordering::Relaxed);
            slot.sig.store(0, Ordering::Relaxed);
            slot.tid.store(tid, Ordering::Release);
            return Some(i);
        }
    }
    None
}

fn set_slot_signal(slot: Option<usize>, sig: i32) {
    if let Some(s) = slot.and_then(|i| SLOTS.get(i)) {
        s.sig.store(sig, Ordering::Release);
    }
}

fn unregister(slot: Option<usize>, tid: i32) {
    if let Some(s) = slot.and_then(|i| SLOTS.get(i)) {
        // Only free it if the signal handler did not claim it already.
        let _ = s.tid.compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

const FATAL_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

static HANDLERS_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: only atomics and raw syscalls.
extern "C" fn on_fatal_signal(signo: libc::c_int) {
    // SAFETY: a signal handler may only call async-signal-safe functions: below are
    // raw syscalls (gettid, ptrace DETACH, tgkill) with integer arguments, getpid,
    // nanosleep, sigaction, sigemptyset/sigaddset and pthread_sigmask (all on the
    // handler's own stack variables), loads and compare-exchanges of the static atomics
    // in SLOTS, and errno read and restored through glibc's thread-local
    // `__errno_location()`, which is valid for the life of the thread. Nothing allocates,
    // locks or touches memory the interrupted code may be changing. The zeroed
    // sigaction and sigset_t are valid values (plain integers and a null handler =
    // SIG_DFL).
    unsafe {
        let errno_ptr = libc::__errno_location();
        let saved_errno = *errno_ptr;
        let me = libc::syscall(libc::SYS_gettid) as i32;
        let pid = libc::getpid();

        // Detach what this thread traces; forward the signal to the other
        // tracer threads, since only a tracee's own tracer may detach it.
        for slot in SLOTS.iter() {
            let tid = slot.tid.load(Ordering::Acquire);
            if tid <= 0 {
                continue;
            }
            let tracer = slot.tracer.load(Ordering::Relaxed);
            if tracer == me {
                if slot.tid.compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    let sig = slot.sig.load(Ordering::Acquire);
                    libc::syscall(libc::SYS_ptrace, libc::PTRACE_DETACH as libc::c_long, tid as libc::c_long, 0 as libc::c_long, sig as libc::c_long);
                }
            } else if libc::syscall(libc::SYS_tgkill, pid as libc::c_long, tracer as libc::c_long, signo as libc::c_long) == -1 {
                // The tracer thread is gone; the kernel detached its tracees when it exited.
                let _ = slot.tid.compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        // Give the other tracer threads a moment to detach before we die.
        for _ in 0..200 {
            if !SLOTS.iter().any(|s| s.tid.load(Ordering::Acquire) > 0) {
                break;
            }
            let ts = libc::timespec { tv_sec: 0, tv_nsec: 5_000_000 };
            libc::nanosleep(&ts, std::ptr::null_mut());
        }

        // Die of the same signal, with the default action, so our parent sees
        // the usual exit status.
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signo, &sa, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::syscall(libc::SYS_tgkill, pid as libc::c_long, me as libc::c_long, signo as libc::c_long);
        *errno_ptr = saved_errno;
    }
}

/// Make SIGINT, SIGTERM, SIGHUP and SIGQUIT detach every thread held by any
/// [`StoppedProcess`] of this process (re-injecting held-back signals), then
/// terminate us with that signal as if no handler were installed. Replaces
/// existing handlers of those signals. Idempotent.
pub fn install_detach_on_fatal_signals() -> Result<()> {
    if HANDLERS_INSTALLED.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    for &sig in &FATAL_SIGNALS {
        // SAFETY: a zeroed sigaction is a valid value (no flags, empty mask, SIG_DFL); we
        // store a handler of the `void (*)(int)` type sa_handler expects (no SA_SIGINFO),
        // and that handler only does async-signal-safe things (see on_fatal_signal); the
        // mask calls write only `sa.sa_mask`, on our stack; a null old-action pointer is
        // allowed.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            // Keep the other fatal signals out while one is being handled.
            libc::sigemptyset(&mut sa.sa_mask);
            for &other in &FATAL_SIGNALS {
                libc::sigaddset(&mut sa.sa_mask, other);
            }
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            HANDLERS_INSTALLED.store(false, Ordering::Release);
            return Err(Error::io(format!("installing handler for signal {sig}"), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// StoppedProcess
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Tracee {
    tid: i32,
    stopped: bool,
    /// Signal held back by a signal-delivery-stop; re-injected on detach.
    pending_signal: Option<i32>,
    slot: Option<usize>,
}

/// A process all of whose threads are held in a ptrace-stop by the current
/// thread. Dropping it (or calling [`StoppedProcess::resume`]) lets them run.
#[derive(Debug)]
pub struct StoppedProcess {
    pid: i32,
    /// Stopped threads, leader first.
    tids: Vec<i32>,
    /// Every thread seized and not yet released (during `stop`, this includes
    /// threads that have not reached their stop yet).
    tracees: Vec<Tracee>,
    tracer_tid: i32,
    detached: bool,
    /// ptrace only accepts requests from the attaching thread: keep this value on it.
    _not_send: PhantomData<*const ()>,
}

fn permission_detail(pid: i32, tid: i32) -> String {
    if let Some(tracer) = tracer_pid(tid).or_else(|| tracer_pid(pid)) {
        return format!("thread {tid} is already traced by process {tracer}");
    }
    "ptrace(PTRACE_SEIZE) refused: the tracer needs CAP_SYS_PTRACE or the target's uid, \
     and kernel.yama.ptrace_scope may forbid attaching to non-children"
        .to_string()
}

/// Thread-group id of a task, from /proc/ID/status.
fn tgid_of(id: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{id}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok())
}

impl StoppedProcess {
    /// Stop every thread of `pid`, waiting up to [`DEFAULT_STOP_TIMEOUT`].
    pub fn stop(pid: i32) -> Result<Self> {
        Self::stop_with_timeout(pid, DEFAULT_STOP_TIMEOUT)
    }

    /// Stop every thread of `pid`: seize and interrupt each thread listed in
    /// `/proc/PID/task`, wait for each to reach a ptrace-stop, and repeat until
    /// a listing shows no new thread (once every known thread is stopped none
    /// can clone, so the last listing is complete).
    pub fn stop_with_timeout(pid: i32, timeout: Duration) -> Result<Self> {
        check_pid(pid)?;
        // SAFETY: getpid takes no arguments, touches no memory and cannot fail.
        if pid == unsafe { libc::getpid() } {
            return Err(Error::PermissionDenied { pid, detail: "a process cannot ptrace-stop itself".into() });
        }
        // /proc/TID/task exists for non-leader threads too; refuse them rather
        // than silently stopping a different pid's process.
        if let Some(tgid) = tgid_of(pid) {
            if tgid != pid {
                return Err(Error::NoSuchProcess { pid });
            }
        }
        let deadline = Instant::now() + timeout;
        let mut sp = StoppedProcess { pid, tids: Vec::new(), tracees: Vec::new(), tracer_tid: gettid(), detached: false, _not_send: PhantomData };
        let mut seen: HashSet<i32> = HashSet::new();
        let mut first_round = true;
        loop {
            let listed = match list_threads(pid) {
                Ok(t) => t,
                Err(Error::NoSuchProcess { .. }) if first_round => return Err(Error::NoSuchProcess { pid }),
                Err(Error::NoSuchProcess { .. }) => return Err(Error::ProcessExited { pid }),
                Err(e) => return Err(e),
            };
            let new: Vec<i32> = listed.into_iter().filter(|&t| seen.insert(t)).collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                sp.attach(tid, first_round)?;
            }
            first_round = false;
            sp.wait_until_stopped(deadline, timeout)?;
        }
        sp.tids = sp.tracees.iter().filter(|t| t.stopped).map(|t| t.tid).collect();
        sp.tids.sort_by_key(|&t| (t != pid, t));
        if sp.tids.is_empty() || !process_exists(pid) {
            return Err(Error::ProcessExited { pid });
        }
        Ok(sp)
    }

    fn attach(&mut self, tid: i32, first_round: bool) -> Result<()> {
        match ptrace_raw(Request::Seize, tid, 0) {
            Ok(()) => {}
            Err(Errno::ESRCH) if tid == self.pid && first_round => return Err(Error::NoSuchProcess { pid: self.pid }),
            // A thread that exited between listing and seizing.
            Err(Errno::ESRCH) => return Ok(()),
            Err(Errno::EPERM) => {
                // Seizing an exiting (zombie) thread is refused with EPERM too;
                // that is not a permission problem.
                if matches!(thread_state(self.pid, tid), None | Some('Z') | Some('X')) {
                    return Ok(());
                }
                return Err(Error::PermissionDenied { pid: self.pid, detail: permission_detail(self.pid, tid) });
            }
            Err(errno) => return Err(Error::Ptrace { pid: tid, op: "PTRACE_SEIZE", errno }),
        }
        let slot = register(tid, self.tracer_tid);
        self.tracees.push(Tracee { tid, stopped: false, pending_signal: None, slot });
        match ptrace_raw(Request::Interrupt, tid, 0) {
            // ESRCH: it died meanwhile; waitpid will report that.
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(Error::Ptrace { pid: tid, op: "PTRACE_INTERRUPT", errno }),
        }
    }

    /// Poll every seized-but-not-stopped thread until each is stopped or gone.
    fn wait_until_stopped(&mut self, deadline: Instant, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let mut waiting = false;
            let mut progressed = false;
            let mut i = 0;
            while i < self.tracees.len() {
                if self.tracees[i].stopped {
                    i += 1;
                    continue;
                }
                let tid = self.tracees[i].tid;
                match wait_nohang(tid) {
                    Ok(WaitResult::NothingYet) => waiting = true,
                    Ok(WaitResult::Stopped(Some(libc::SIGTRAP))) if is_hw_breakpoint(tid) => {
                        // Our breakpoint fired just as we asked the thread to stop: that
                        // SIGTRAP is ours, never the program's (re-injected, it would kill
                        // it). Discard it and take the interrupt's event stop instead; the
                        // thread is still before the instruction, so an armed breakpoint
                        // fires again when it runs.
                        progressed = true;
                        ptrace_raw(Request::Interrupt, tid, 0).ok();
                        ptrace_raw(Request::Cont, tid, 0).ok();
                    }
                    Ok(WaitResult::Stopped(sig)) => {
                        progressed = true;
                        let t = &mut self.tracees[i];
                        t.stopped = true;
                        t.pending_signal = sig;
                        set_slot_signal(t.slot, sig.unwrap_or(0));
                    }
                    Ok(WaitResult::Gone) => {
                        progressed = true;
                        let t = self.tracees.swap_remove(i);
                        unregister(t.slot, t.tid);
                        continue;
                    }
                    Err(errno) => return Err(Error::Ptrace { pid: tid, op: "waitpid", errno }),
                }
                i += 1;
            }
            if !waiting {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::StopTimeout {
                    pid: self.pid,
                    tids: self.tracees.iter().filter(|t| !t.stopped).map(|t| t.tid).collect(),
                    waited_ms: timeout.as_millis() as u64,
                });
            }
            if !progressed {
                // A thread usually stops within microseconds of the interrupt: yield the
                // CPU to it at first, and only sleep for one that takes longer.
                if started.elapsed() < Duration::from_millis(2) {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The stopped threads, thread-group leader first.
    pub fn threads(&self) -> &[i32] {
        &self.tids
    }

    /// Signals that arrived while we were stopping the process, as
    /// `(tid, signal)`; they are delivered when the process is resumed.
    pub fn pending_signals(&self) -> Vec<(i32, i32)> {
        self.tracees.iter().filter_map(|t| t.pending_signal.map(|s| (t.tid, s))).collect()
    }

    /// General-purpose registers of a stopped thread.
    pub fn registers(&self, tid: i32) -> Result<libc::user_regs_struct> {
        if !self.tids.contains(&tid) {
            return Err(Error::Ptrace { pid: tid, op: "PTRACE_GETREGS", errno: Errno::ESRCH });
        }
        nix::sys::ptrace::getregs(nix::unistd::Pid::from_raw(tid)).map_err(|errno| match errno {
            Errno::ESRCH if !process_exists(self.pid) => Error::ProcessExited { pid: self.pid },
            errno => Error::Ptrace { pid: tid, op: "PTRACE_GETREGS", errno },
        })
    }

    /// Let the process run again: detach every thread, re-injecting any
    /// signal that was held back. Every thread is attempted even if one fails;
    /// the first failure is returned.
    pub fn resume(mut self) -> Result<()> {
        self.detach_all()
    }

    fn detach_all(&mut self) -> Result<()> {
        if self.detached {
            return Ok(());
        }
        self.detached = true;
        let deadline = Instant::now() + DETACH_GRACE;
        let mut first_err = None;
        for t in std::mem::take(&mut self.tracees) {
            let mut stopped = t.stopped;
            let mut sig = t.pending_signal;
            // A seized thread that has not stopped yet cannot be detached;
            // its interrupt is pending, so it will stop shortly.
            while !stopped {
                match wait_nohang(t.tid) {
                    Ok(WaitResult::Stopped(s)) => {
                        stopped = true;
                        // A breakpoint's trap is ours to discard (see wait_until_stopped).
                        sig = s.filter(|&s| !(s == libc::SIGTRAP && is_hw_breakpoint(t.tid)));
                    }
                    Ok(WaitResult::Gone) | Err(_) => break,
                    Ok(WaitResult::NothingYet) if Instant::now() >= deadline => {
                        first_err.get_or_insert(Error::StopTimeout { pid: self.pid, tids: vec![t.tid], waited_ms: DETACH_GRACE.as_millis() as u64 });
                        break;
                    }
                    Ok(WaitResult::NothingYet) => std::thread::sleep(Duration::from_micros(500)),
                }
            }
            if stopped {
                match detach_raw(t.tid, sig.unwrap_or(0)) {
                    Ok(()) => {}
                    // Killed while stopped: reap it so it does not linger as our zombie.
                    Err(Errno::ESRCH) => {
                        let _ = wait_nohang(t.tid);
                    }
                    Err(errno) => {
                        first_err.get_or_insert(Error::Ptrace { pid: t.tid, op: "PTRACE_DETACH", errno });
                    }
                }
            }
            unregister(t.slot, t.tid);
        }
        self.tids.clear();
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for StoppedProcess {
    fn drop(&mut self) {
        let _ = self.detach_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_round_trip() {
        let slot = register(999_999, 1);
        assert!(slot.is_some());
        set_slot_signal(slot, 10);
        unregister(slot, 999_999);
        assert!(SLOTS.iter().all(|s| s.tid.load(Ordering::Relaxed) != 999_999));
        // Out-of-range or missing slots are ignored.
        set_slot_signal(Some(usize::MAX), 1);
        unregister(None, 1);
    }

    #[test]
    fn refuses_bad_targets() {
        assert!(matches!(StoppedProcess::stop(0), Err(Error::NoSuchProcess { pid: 0 })));
        assert!(matches!(StoppedProcess::stop(-1), Err(Error::NoSuchProcess { .. })));
        assert!(matches!(StoppedProcess::stop(i32::MAX), Err(Error::NoSuchProcess { .. })));
        let me = std::process::id() as i32;
        assert!(matches!(StoppedProcess::stop(me), Err(Error::PermissionDenied { .. })));
    }
}

// ---------------------------------------------------------------------------
// Running a stopped process until one thread reaches an address.
// ---------------------------------------------------------------------------

/// si_code of a SIGTRAP raised by a ptrace hardware breakpoint, and by a perf event
/// with `sigtrap` (what [`crate::breakpoint::HwBreakpoint`] uses).
const TRAP_HWBKPT: i32 = 4;
const TRAP_PERF: i32 = 6;

/// What [`StoppedProcess::run_until_breakpoint`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The thread reached the address; every thread is stopped again.
    Hit,
    /// The time ran out; every thread is stopped again.
    TimedOut,
}

impl StoppedProcess {
    /// Set the general-purpose registers of a stopped thread.
    pub fn set_registers(&self, tid: i32, regs: libc::user_regs_struct) -> Result<()> {
        nix::sys::ptrace::setregs(nix::unistd::Pid::from_raw(tid), regs).map_err(|errno| Error::Ptrace { pid: tid, op: "PTRACE_SETREGS", errno })
    }

    /// Let every thread run (still traced) until `tid` hits a hardware breakpoint
    /// or `timeout` passes, calling `keep_waiting` every few milliseconds meanwhile
    /// (returning false ends the wait early, as a timeout would). Signals
    /// other threads receive are passed on. Either way, every thread (including any
    /// created meanwhile) is stopped again on return, the hit thread in an event stop
    /// with no signal pending: if we die now, it simply runs on.
    pub fn run_until_breakpoint(&mut self, tid: i32, timeout: Duration, mut keep_waiting: impl FnMut() -> bool) -> Result<RunOutcome> {
        for t in &mut self.tracees {
            if t.stopped {
                let sig = t.pending_signal.take().unwrap_or(0);
                ptrace_raw(Request::Cont, t.tid, sig as libc::c_long).ok();
                t.stopped = false;
                set_slot_signal(t.slot, 0);
            }
        }
        let deadline = Instant::now() + timeout;
        let mut outcome = RunOutcome::TimedOut;
        let mut last_tick = Instant::now() - Duration::from_secs(1);
        // Wake on SIGCHLD (sent to us at every tracee stop) rather than polling: until a
        // breakpoint's SIGTRAP stop is turned into an event stop, a tracer killed meanwhile
        // would leave the signal to kill the tracee, so that window must be as short as
        // the scheduler allows.
        let _sigchld = SigchldWait::block();
        'wait: while Instant::now() < deadline {
            if last_tick.elapsed() >= Duration::from_millis(5) {
                if !keep_waiting() {
                    break;
                }
                last_tick = Instant::now();
            }
            let mut idle = true;
            for i in 0..self.tracees.len() {
                if self.tracees[i].stopped {
                    continue;
                }
                let t_tid = self.tracees[i].tid;
                match wait_nohang(t_tid) {
                    Ok(WaitResult::NothingYet) => {}
                    Ok(WaitResult::Gone) => {
                        idle = false;
                        self.tracees[i].stopped = true; // nothing to resume
                        if t_tid == self.pid {
                            return Err(Error::ProcessExited { pid: self.pid });
                        }
                    }
                    Ok(WaitResult::Stopped(sig)) => {
                        idle = false;
                        if t_tid == tid && sig == Some(libc::SIGTRAP) && is_hw_breakpoint(t_tid) {
                            // Turn the signal-delivery-stop into an event stop: interrupt,
                            // then continue with the signal suppressed; the thread traps
                            // again before running any user code.
                            ptrace_raw(Request::Interrupt, t_tid, 0).ok();
                            ptrace_raw(Request::Cont, t_tid, 0).ok();
                            outcome = RunOutcome::Hit;
                            break 'wait;
                        }
                        // Anything else: pass the signal on, keep running.
                        ptrace_raw(Request::Cont, t_tid, sig.unwrap_or(0) as libc::c_long).ok();
                    }
                    Err(errno) => return Err(Error::Ptrace { pid: t_tid, op: "waitpid", errno }),
                }
            }
            if idle {
                let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(5));
                SigchldWait::wait(left);
            }
        }
        self.stop_again()?;
        Ok(outcome)
    }

    /// Interrupt every running tracee, seize threads created meanwhile, and wait
    /// until all are stopped.
    fn stop_again(&mut self) -> Result<()> {
        for t in &self.tracees {
            if !t.stopped {
                ptrace_raw(Request::Interrupt, t.tid, 0).ok();
            }
        }
        let timeout = DEFAULT_STOP_TIMEOUT;
        self.wait_until_stopped(Instant::now() + timeout, timeout)?;
        loop {
            let known: HashSet<i32> = self.tracees.iter().map(|t| t.tid).collect();
            let new: Vec<i32> = list_threads(self.pid)?.into_iter().filter(|t| !known.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                self.attach(tid, false)?;
            }
            self.wait_until_stopped(Instant::now() + timeout, timeout)?;
        }
        self.tids = self.tracees.iter().filter(|t| t.stopped).map(|t| t.tid).collect();
        self.tids.sort_by_key(|&t| (t != self.pid, t));
        Ok(())
    }
}

/// One turn of a lone thread's run: past `deadline`, interrupt it (once), and give up
/// if it does not stop within DETACH_GRACE after that; else wait for the next SIGCHLD
/// (at most 50 ms).
fn wait_or_interrupt(tid: i32, deadline: Instant, interrupted: &mut bool) -> Result<()> {
    let now = Instant::now();
    if now >= deadline && !*interrupted {
        ptrace_raw(Request::Interrupt, tid, 0).ok();
        *interrupted = true;
    } else if *interrupted && now >= deadline + DETACH_GRACE {
        return Err(Error::Ptrace { pid: tid, op: "PTRACE_INTERRUPT", errno: Errno::ETIMEDOUT });
    }
    SigchldWait::wait(deadline.saturating_duration_since(now).clamp(Duration::from_millis(1), Duration::from_millis(50)));
    Ok(())
}

/// SIGCHLD blocked in this thread for the guard's lifetime, so that it can be waited for.
/// `!Send`: the signal mask is per thread, so the guard must be dropped (the old mask
/// restored) on the thread that blocked it.
struct SigchldWait {
    old: libc::sigset_t,
    _not_send: PhantomData<*const ()>,
}

impl SigchldWait {
    fn block() -> Self {
        // SAFETY: zeroed sigset_t values are valid (and initialised by sigemptyset before
        // use); sigemptyset, sigaddset and pthread_sigmask only write the two sets, which
        // live on this stack frame for the calls.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SigchldWait { old, _not_send: PhantomData }
        }
    }

    /// Until a SIGCHLD arrives or `timeout` passes.
    fn wait(timeout: Duration) {
        // SAFETY: as in block() for the set; `ts` is a valid timespec (tv_nsec below 10^9,
        // from Duration::subsec_nanos) that sigtimedwait only reads, and `info`, a zeroed
        // siginfo_t on this stack frame (a valid value), is the only memory it writes.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigtimedwait(&set, &mut info, &ts);
        }
    }
}

impl Drop for SigchldWait {
    fn drop(&mut self) {
        // SAFETY: `self.old` is the mask pthread_sigmask filled in block(), on this same
        // thread (the guard is !Send); it is only read, and a null old-set pointer is allowed.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

fn is_hw_breakpoint(tid: i32) -> bool {
    nix::sys::ptrace::getsiginfo(nix::unistd::Pid::from_raw(tid)).map(|si| si.si_code == TRAP_HWBKPT || si.si_code == TRAP_PERF).unwrap_or(false)
}

impl StoppedProcess {
    /// From now on, if this tracer dies the kernel kills the tracee (PTRACE_O_EXITKILL)
    /// instead of letting it run: for the moment another process has taken over its work.
    pub fn kill_if_tracer_dies(&self) -> Result<()> {
        for t in &self.tracees {
            if t.stopped {
                // SAFETY: for PTRACE_SETOPTIONS the kernel ignores `addr` and takes `data` as the
                // option bits, not as a pointer: no memory of ours is read or written. The
                // variadic wrapper reads (pid_t, void *, void *), which is what is passed.
                let rc = unsafe {
                    libc::ptrace(libc::PTRACE_SETOPTIONS, t.tid, std::ptr::null_mut::<libc::c_void>(), libc::PTRACE_O_EXITKILL as *mut libc::c_void)
                };
                if rc == -1 {
                    return Err(Error::Ptrace { pid: t.tid, op: "PTRACE_SETOPTIONS", errno: Errno::last() });
                }
            }
        }
        Ok(())
    }
}

/// What a thread run alone did ([`StoppedProcess::run_alone_until_signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AloneOutcome {
    /// A signal was about to be delivered to it: held, never delivered.
    Signal(i32),
    TimedOut,
    /// The thread (or the whole process) ended.
    Gone,
}

impl StoppedProcess {
    /// Let thread `tid` alone run to the process's end (an `_exit` it was made to call, a
    /// fatal signal), passing on every signal it gets; the others stay stopped and end
    /// with it, running nothing more. True once the process is gone; false when `timeout`
    /// passes first (the thread is stopped again).
    pub fn run_alone_to_the_end(&mut self, tid: i32, timeout: Duration) -> Result<bool> {
        let Some(i) = self.tracees.iter().position(|t| t.tid == tid && t.stopped) else {
            return Err(Error::Ptrace { pid: tid, op: "PTRACE_CONT", errno: Errno::ESRCH });
        };
        let first = self.tracees[i].pending_signal.take().unwrap_or(0);
        set_slot_signal(self.tracees[i].slot, 0);
        let _sigchld = SigchldWait::block();
        ptrace_raw(Request::Cont, tid, first as libc::c_long).map_err(|errno| Error::Ptrace { pid: tid, op: "PTRACE_CONT", errno })?;
        self.tracees[i].stopped = false;
        let deadline = Instant::now() + timeout;
        let mut interrupted = false;
        loop {
            // The others, killed by the process's end: each reports its exit (or an exit
            // stop, to be let go on) before the main thread's end is reported.
            for t in self.tracees.iter_mut().filter(|t| t.tid != tid && t.stopped) {
                match wait_nohang(t.tid) {
                    Ok(WaitResult::Stopped(_)) => {
                        ptrace_raw(Request::Cont, t.tid, 0).ok();
                    }
                    Ok(WaitResult::Gone) => t.stopped = true,
                    _ => {}
                }
            }
            match wait_nohang(tid) {
                Ok(WaitResult::NothingYet) => {}
                Ok(WaitResult::Gone) => {
                    for t in &mut self.tracees {
                        t.stopped = true; // gone with it: nothing to resume
                    }
                    return Ok(true);
                }
                Ok(WaitResult::Stopped(_)) if interrupted => {
                    self.tracees[i].stopped = true;
                    return Ok(false);
                }
                Ok(WaitResult::Stopped(sig)) => {
                    ptrace_raw(Request::Cont, tid, sig.unwrap_or(0) as libc::c_long).ok();
                }
                Err(errno) => return Err(Error::Ptrace { pid: tid, op: "waitpid", errno }),
            }
            wait_or_interrupt(tid, deadline, &mut interrupted)?;
        }
    }

    /// Let thread `tid` alone run (the others stay stopped) until a signal is about to be
    /// delivered to it, or `timeout` passes; it is stopped again either way. A reported
    /// signal is swallowed: the caller decides what it means (a thread parked in `pause()`
    /// is where a process-directed signal lands while the others are stopped).
    pub fn run_alone_until_signal(&mut self, tid: i32, timeout: Duration) -> Result<AloneOutcome> {
        let Some(i) = self.tracees.iter().position(|t| t.tid == tid && t.stopped) else {
            return Err(Error::Ptrace { pid: tid, op: "PTRACE_CONT", errno: Errno::ESRCH });
        };
        // A signal held back since the stop is the first one to report.
        if let Some(sig) = self.tracees[i].pending_signal.take() {
            set_slot_signal(self.tracees[i].slot, 0);
            return Ok(AloneOutcome::Signal(sig));
        }
        let _sigchld = SigchldWait::block();
        ptrace_raw(Request::Cont, tid, 0).map_err(|errno| Error::Ptrace { pid: tid, op: "PTRACE_CONT", errno })?;
        self.tracees[i].stopped = false;
        let deadline = Instant::now() + timeout;
        let mut interrupted = false;
        loop {
            match wait_nohang(tid) {
                Ok(WaitResult::NothingYet) => {}
                Ok(WaitResult::Gone) => {
                    self.tracees[i].stopped = true; // nothing to resume
                    return Ok(AloneOutcome::Gone);
                }
                Ok(WaitResult::Stopped(Some(sig))) => {
                    self.tracees[i].stopped = true;
                    return Ok(AloneOutcome::Signal(sig));
                }
                Ok(WaitResult::Stopped(None)) if interrupted => {
                    self.tracees[i].stopped = true;
                    return Ok(AloneOutcome::TimedOut);
                }
                // A group-stop or a stray event stop: not what we wait for.
                Ok(WaitResult::Stopped(None)) => {
                    ptrace_raw(Request::Cont, tid, 0).ok();
                }
                Err(errno) => return Err(Error::Ptrace { pid: tid, op: "waitpid", errno }),
            }
            wait_or_interrupt(tid, deadline, &mut interrupted)?;
        }
    }
}
