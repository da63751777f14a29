//! Python work done inside an attached target, at its safe point: what memory reading
//! cannot do, above all `__reduce_ex__` of objects of C-extension types (numpy arrays,
//! `_csv` readers...), which the shim answers in a teleport.
//!
//! The main thread stands at the entry of the pending-work handler, called from the eval
//! loop between two instructions with the GIL held: the point where CPython itself runs
//! signal handlers, i.e. arbitrary Python code. The thread is made to call
//! `PyRun_SimpleStringFlags(source)` (or `PyList_Append`) in place of the handler
//! (`ptrace_tools::call`); both return 0 on success, which is also what the handler
//! returns when it has nothing to do. So whenever pyteleport dies, the thread goes on as
//! if the handler had found nothing, and any pending work it displaced (a signal) is
//! still flagged and handled at the next check.
//!
//! The code brought along needs nothing of pyteleport in the target. It stores its
//! answers in `sys._pyteleport_attach` (and keeps earlier rounds' answers alive in
//! `sys._pyteleport_attach_kept`); both are removed before the target runs again.

use std::time::Duration;

use ptrace_tools::call::{CallOutcome, SubstituteCall, POP_RSP_RET};
use ptrace_tools::elf::ElfFile;
use ptrace_tools::stop::StoppedProcess;

use crate::decode::{Decoder, Limits};
use crate::error::{AttachError, Result};
use crate::process::{BuiltinType, PythonProcess};

/// The `sys` attribute the in-target code answers in.
const ANSWER: &str = "_pyteleport_attach";

/// The functions the target is made to call, in its own address space.
pub struct InTarget {
    run_source: u64,
    list_append: u64,
    pop_rsp_ret: u64,
    tid: i32,
    /// Whether anything was left in `sys` that `clean_up` must remove.
    dirty: bool,
    /// A call did not return in time: the thread is inside it, no longer at the entry a
    /// substitute call needs, so nothing more can be asked of it (it finishes by itself
    /// once resumed, returning to the eval loop as the handler would).
    stuck: bool,
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The code that leaves the interpreter's extras in `sys` (shared with the shim).
const EXTRAS: &str = concat!(include_str!("../python_shim/python/pyteleport/_reduce_core.py"), "\nanswer_extras()\n");

/// The code that reduces objects, shared with the shim (which imports it as a module).
const REDUCE: &str = concat!(include_str!("../python_shim/python/pyteleport/_reduce_core.py"), "\nanswer_attach()\n");

impl InTarget {
    /// The functions needed, from the interpreter's binary; None when one is missing.
    pub fn locate(py: &PythonProcess, tid: i32) -> Option<InTarget> {
        let elf = ElfFile::open_in_process(py.pid, &py.binary).ok()?;
        let bias = elf.load_bias_in_process(&py.maps)?;
        let at = |name: &str| elf.symbol(name).map(|s| bias.wrapping_add(s.value));
        Some(InTarget {
            run_source: at("PyRun_SimpleStringFlags")?,
            list_append: at("PyList_Append")?,
            pop_rsp_ret: bias.wrapping_add(elf.find_in_code(&POP_RSP_RET)?),
            tid,
            dirty: false,
            stuck: false,
        })
    }

    fn call(&mut self, stopped: &mut StoppedProcess, call: SubstituteCall<'_>, what: &str, timeout: Duration) -> Result<()> {
        if self.stuck {
            return Err(AttachError::InTargetFailed { what: what.to_string(), why: "an earlier call is still running".into() }.into());
        }
        // Not cut short when the attacher dies: the tracer then waits for the call's end and
        // cleans up before letting go, so nothing stays behind.
        let outcome = stopped.call_instead(self.tid, &call, timeout, || true)?;
        match outcome {
            CallOutcome::Returned(rax) if rax as u32 == 0 => Ok(()),
            CallOutcome::Returned(_) => Err(AttachError::InTargetFailed { what: what.to_string(), why: "it raised an exception".into() }.into()),
            CallOutcome::StillRunning => {
                self.stuck = true;
                Err(AttachError::InTargetFailed {
                    what: what.to_string(),
                    why: format!("it did not finish within {:.1} s (it goes on by itself)", timeout.as_secs_f64()),
                }
                .into())
            }
        }
    }

    /// Run Python `source` (statements) in a namespace of its own: `PyRun_SimpleString`
    /// runs in `__main__`, whose globals belong to the program. Whatever escapes it (also
    /// from a program's signal handler run inside it) becomes a string answer instead of
    /// a -1 return: were we gone by then, the eval loop would take that -1 as the
    /// handler's, with no exception set. A Ctrl-C is handed back to the program.
    fn run(&mut self, stopped: &mut StoppedProcess, source: &str, what: &str, timeout: Duration) -> Result<()> {
        let guarded = format!(
            "try:\n    exec(bytes.fromhex('{}').decode(), {{'__name__': '_pyteleport_attach'}})\n\
             except BaseException as e:\n    import sys\n    sys.{ANSWER} = 'the code raised ' + repr(e)\n\
             \x20   if isinstance(e, KeyboardInterrupt):\n        import _thread\n        _thread.interrupt_main()\n",
            hex(source)
        );
        let wrapped = format!("__import__('builtins').exec(bytes.fromhex('{}').decode(), {{'__name__': '_pyteleport_attach'}})\0", hex(&guarded));
        self.dirty = true;
        let call = SubstituteCall { function: self.run_source, data: Some(wrapped.as_bytes()), args: &[0], pop_rsp_ret: self.pop_rsp_ret };
        self.call(stopped, call, what, timeout)
    }

    /// Reduce the objects at `addrs` in the target; returns the address of the list of
    /// their reduce tuples, alive until `clean_up`.
    pub fn reduce(&mut self, py: &PythonProcess, stopped: &mut StoppedProcess, addrs: &[u64], timeout: Duration) -> Result<u64> {
        let what = "reducing objects of C types";
        self.run(stopped, &format!("import sys\nsys.{ANSWER} = []\n"), what, timeout)?;
        let inbox = self.answer(py)?.ok_or_else(|| AttachError::InTargetFailed { what: what.into(), why: "no answer was left".into() })?;
        // PyList_Append on anything else would leave an exception set in the thread.
        self.refuse_text_answer(py, inbox, what)?;
        for &addr in addrs {
            let call = SubstituteCall { function: self.list_append, data: None, args: &[inbox, addr], pop_rsp_ret: self.pop_rsp_ret };
            self.call(stopped, call, what, timeout)?;
        }
        self.run(stopped, REDUCE, what, timeout)?;
        let answer = self.answer(py)?.ok_or_else(|| AttachError::InTargetFailed { what: what.into(), why: "no answer was left".into() })?;
        self.refuse_text_answer(py, answer, what)?;
        Ok(answer)
    }

    /// The in-target code answers a list, or a string saying why it could not.
    fn refuse_text_answer(&self, py: &PythonProcess, answer: u64, what: &str) -> Result<()> {
        let live = ptrace_tools::memory::ProcessMemory::new(py.pid);
        let mut d = Decoder::new(py, &live, Limits::default());
        if d.is_exact(answer, BuiltinType::Str)? {
            let why = d.read_str(answer)?.as_text().to_string();
            // The reduce's "not at this moment" (a transaction open): attach waits.
            if let Some(what) = why.strip_prefix("not now: ") {
                return Err(crate::error::CaptureError::NotNow { what: what.into() }.into());
            }
            return Err(AttachError::InTargetFailed { what: what.into(), why }.into());
        }
        if !d.is_exact(answer, BuiltinType::List)? {
            return Err(AttachError::InTargetFailed { what: what.into(), why: "its answer is not a list".into() }.into());
        }
        Ok(())
    }

    /// Have the target leave `sys._pyteleport_extras` (its decimal context and signal
    /// handlers, `_reduce_core.interpreter_extras`) for the capture to read.
    pub fn gather_extras(&mut self, stopped: &mut StoppedProcess, timeout: Duration) -> Result<()> {
        self.run(stopped, EXTRAS, "reading the decimal context and signal handlers", timeout)
    }

    /// Have the target flush `sys.stdout` and `sys.stderr` (and the original streams, when
    /// the program redirected those), as a `flush()` of its own would (a checkpoint it
    /// goes on after: what it printed before is then out, once).
    pub fn flush_stdio(&mut self, stopped: &mut StoppedProcess, timeout: Duration) -> Result<()> {
        let source = "import sys
for s in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
    try:
        s.flush()
    except Exception:
        pass
";
        self.run(stopped, source, "flushing its standard output", timeout)?;
        self.clean_up(stopped, timeout)
    }

    /// Call C function `function` with integer `args` in the target's main thread; its
    /// return value.
    pub fn call_c(&mut self, stopped: &mut StoppedProcess, function: u64, args: &[u64], timeout: Duration) -> Result<u64> {
        let call = SubstituteCall { function, data: None, args, pop_rsp_ret: self.pop_rsp_ret };
        match stopped.call_instead(self.tid, &call, timeout, || true)? {
            CallOutcome::Returned(rax) => Ok(rax),
            CallOutcome::StillRunning => {
                self.stuck = true;
                Err(AttachError::InTargetFailed { what: "a C call".into(), why: "it did not return".into() }.into())
            }
        }
    }

    /// `sys.<ANSWER>`, read from memory.
    fn answer(&self, py: &PythonProcess) -> Result<Option<u64>> {
        let live = ptrace_tools::memory::ProcessMemory::new(py.pid);
        let mut d = Decoder::new(py, &live, Limits::default());
        let l = py.layout;
        let interp = d.ptr(py.runtime_addr + l.runtime_interpreters_head as u64)?;
        let sysdict = d.ptr(interp + l.interp_sysdict as u64)?;
        for (k, v) in d.dict_entries(sysdict)? {
            if d.is_exact(k, BuiltinType::Str)? && d.read_str(k)?.as_text() == ANSWER {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Remove what the in-target work left in `sys` (the answers it kept alive).
    pub fn clean_up(&mut self, stopped: &mut StoppedProcess, timeout: Duration) -> Result<()> {
        if !self.dirty || self.stuck {
            return Ok(());
        }
        let source = "import sys\nfor k in ('_pyteleport_attach', '_pyteleport_attach_kept', '_pyteleport_extras'):\n    sys.__dict__.pop(k, None)\n";
        self.run(stopped, source, "cleaning up", timeout)?;
        self.dirty = false;
        Ok(())
    }
}
