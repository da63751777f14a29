//! Execute breakpoints that cannot outlive us.
//!
//! A hardware breakpoint set with PTRACE_POKEUSER stays armed in the tracee after the
//! tracer dies (measured here: the tracee later dies of SIGTRAP). One made with
//! `perf_event_open` belongs to the file descriptor: when we exit, however we exit, the
//! kernel closes it and the breakpoint is gone. With `sigtrap` set, a hit sends the
//! traced thread a SIGTRAP, which the tracer sees as a signal-delivery-stop.

use std::os::unix::io::{FromRawFd, OwnedFd};

use crate::error::{Error, Result};

const PERF_TYPE_BREAKPOINT: u32 = 5;
const HW_BREAKPOINT_X: u32 = 4;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `struct perf_event_attr` up to `sig_data` (PERF_ATTR_SIZE_VER7).
const ATTR_SIZE: usize = 128;

// Bits of the flags word (offset 40).
const EXCLUDE_KERNEL: u64 = 1 << 5;
const EXCLUDE_HV: u64 = 1 << 6;
const REMOVE_ON_EXEC: u64 = 1 << 36;
const SIGTRAP: u64 = 1 << 37;

/// An armed execute breakpoint on one thread; disarmed when dropped (or when we die).
#[derive(Debug)]
pub struct HwBreakpoint {
    _fd: OwnedFd,
}

impl HwBreakpoint {
    /// Arm an execute breakpoint at `addr` in thread `tid`.
    pub fn on_execute(tid: i32, addr: u64) -> Result<HwBreakpoint> {
        let mut attr = [0u8; ATTR_SIZE];
        let mut put = |off: usize, bytes: &[u8]| attr[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, &PERF_TYPE_BREAKPOINT.to_le_bytes());
        put(4, &(ATTR_SIZE as u32).to_le_bytes());
        put(16, &1u64.to_le_bytes()); // sample_period: every hit
        put(40, &(EXCLUDE_KERNEL | EXCLUDE_HV | REMOVE_ON_EXEC | SIGTRAP).to_le_bytes());
        put(52, &HW_BREAKPOINT_X.to_le_bytes());
        put(56, &addr.to_le_bytes());
        put(64, &8u64.to_le_bytes()); // bp_len: sizeof(long) for execute breakpoints
                                      // SAFETY: `attr` is ATTR_SIZE bytes that live across the call, laid out as a
                                      // perf_event_attr whose `size` field says ATTR_SIZE, so the kernel reads exactly
                                      // that buffer (copy_from_user: no alignment needed) and writes nothing of ours
                                      // (it may write back `size` only on E2BIG, within the same buffer). The other
                                      // arguments are integers.
        let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), tid, -1i32, -1i32, PERF_FLAG_FD_CLOEXEC) };
        if fd < 0 {
            let errno = nix::errno::Errno::last();
            return Err(Error::Ptrace { pid: tid, op: "perf_event_open (execute breakpoint)", errno });
        }
        // SAFETY: `fd` is non-negative (checked above) and a descriptor perf_event_open
        // just created for us; nothing else owns or closes it, so OwnedFd may take it.
        Ok(HwBreakpoint { _fd: unsafe { OwnedFd::from_raw_fd(fd as i32) } })
    }
}
