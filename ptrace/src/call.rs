//! Making a stopped thread call a function of its own process, in place of the call it
//! is about to make.
//!
//! The thread must stand at the entry of a function (as at an execute breakpoint on it):
//! its stack pointer points at the return address into its caller, and the memory below
//! is free (the callee would use it). The thread is made to call `function(args)`
//! instead, returning to that same caller. Nothing in the target's code is changed and
//! no state of ours is needed for the target to come out right: the call returns
//! through a `pop rsp; ret` found in the process's own code, which puts the stack
//! pointer back and returns to the caller exactly as the replaced call would have. If
//! the tracer dies at any moment, the thread goes on as if the replaced function had
//! returned the substitute's return value; callers choose functions for which that is
//! harmless (one returning 0 where the replaced one returns 0 for "nothing to do").
//!
//! While the tracer lives, it catches the return with an execute breakpoint on the
//! caller's return address (checking the stack pointer, since nested calls made by the
//! substitute may return there too) and puts every register back, so the thread stands
//! again at the entry of the replaced function as if nothing had happened.

use std::time::Duration;

use crate::breakpoint::HwBreakpoint;
use crate::error::{Error, Result};
use crate::memory::ProcessMemory;
use crate::stop::{RunOutcome, StoppedProcess};

/// Resume flag: lets a thread stopped on an execute breakpoint run that instruction.
const EFLAGS_RF: u64 = 1 << 16;

/// Bytes of `pop %rsp; ret`.
pub const POP_RSP_RET: [u8; 2] = [0x5c, 0xc3];

/// Where the substitute call's data and frame go: this far below the stack pointer at
/// most (the caller's stack mapping must reach that low).
pub const MAX_DATA: usize = 64 << 10;

/// How a substitute call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// It returned this value; the thread stands at the replaced function's entry again.
    Returned(u64),
    /// It did not return within the time given: the thread runs it on (and will return
    /// to its caller by itself); every thread is stopped again.
    StillRunning,
}

/// The call to make: `function(data_address?, args...)`.
pub struct SubstituteCall<'a> {
    pub function: u64,
    /// Copied just below the stack pointer; its address becomes the first argument.
    pub data: Option<&'a [u8]>,
    /// Integer arguments (after the data address, if any); at most 6 in all.
    pub args: &'a [u64],
    /// Address of a `pop %rsp; ret` in the process's code.
    pub pop_rsp_ret: u64,
}

impl StoppedProcess {
    /// Make thread `tid`, standing at a function's entry, call `call.function` instead
    /// (see the module comment). `keep_waiting` is asked every few milliseconds; false
    /// ends the wait as the timeout would.
    pub fn call_instead(
        &mut self,
        tid: i32,
        call: &SubstituteCall<'_>,
        timeout: Duration,
        mut keep_waiting: impl FnMut() -> bool,
    ) -> Result<CallOutcome> {
        let saved = self.registers(tid)?;
        let mem = ProcessMemory::new(self.pid());
        let caller_sp = saved.rsp;
        let return_address = mem.read_u64(caller_sp)?;
        // Below the return address: the data, then the word `pop rsp` reads (the caller's
        // stack pointer), then the substitute's return address (the gadget).
        let data = call.data.unwrap_or(&[]);
        if data.len() > MAX_DATA {
            return Err(Error::io("substitute call", std::io::Error::new(std::io::ErrorKind::InvalidInput, "data too large")));
        }
        let data_at = (caller_sp - 8 - data.len() as u64) & !0xf;
        // At a function's entry the stack pointer is 8 off a 16-byte boundary.
        let call_sp = ((data_at - 16) & !0xf) - 8;
        mem.write(data_at, data)?;
        mem.write(call_sp, &call.pop_rsp_ret.to_le_bytes())?;
        mem.write(call_sp + 8, &caller_sp.to_le_bytes())?;
        let mut args: Vec<u64> = call.data.map(|_| data_at).into_iter().collect();
        args.extend_from_slice(call.args);
        let mut regs = saved;
        let slots = [&mut regs.rdi, &mut regs.rsi, &mut regs.rdx, &mut regs.rcx, &mut regs.r8, &mut regs.r9];
        for (slot, value) in slots.into_iter().zip(args) {
            *slot = value;
        }
        regs.rax = 0; // no vector registers used by a variadic callee
        regs.rsp = call_sp;
        regs.rip = call.function;
        regs.orig_rax = u64::MAX; // not in a system call: nothing to restart
        regs.eflags |= EFLAGS_RF;
        // Armed before the thread can run: the return must not be missed.
        let back = HwBreakpoint::on_execute(tid, return_address)?;
        self.set_registers(tid, regs)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(CallOutcome::StillRunning);
            }
            match self.run_until_breakpoint(tid, left, &mut keep_waiting)? {
                RunOutcome::TimedOut => return Ok(CallOutcome::StillRunning),
                RunOutcome::Hit => {
                    let mut now = self.registers(tid)?;
                    if now.rip == return_address && now.rsp == caller_sp + 8 {
                        drop(back);
                        let value = now.rax;
                        self.set_registers(tid, saved)?;
                        return Ok(CallOutcome::Returned(value));
                    }
                    // A nested call returning to the same place: step over, wait on.
                    now.eflags |= EFLAGS_RF;
                    self.set_registers(tid, now)?;
                }
            }
        }
    }
}
