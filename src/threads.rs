//! Walking the interpreter: interpreters, their thread states, each thread's frames.

use crate::error::{Error, Result};
use crate::objects::{Decoder, ObjId};
pub use crate::snapshot::model::ThreadInfo;


/// Bound on frames per thread and on thread-list length: a corrupt `previous` or `next`
/// pointer forming a loop must not hang the reader.
const MAX_FRAMES: usize = 1_000_000;
const MAX_THREADS: usize = 100_000;

impl<'a> Decoder<'a> {
    /// Addresses of every thread state of the main interpreter, head first.
    pub fn thread_states(&mut self) -> Result<Vec<u64>> {
        let l = self.py.layout;
        let interp = self.ptr(self.py.runtime_addr + l.runtime_interpreters_head as u64)?;
        if interp == 0 {
            return Err(Error::NotPython { pid: self.py.pid, detail: "the interpreter is not initialised (or is finalising)".into() });
        }
        let mut out = Vec::new();
        let mut t = self.ptr(interp + l.interp_threads_head as u64)?;
        while t != 0 {
            if out.len() >= MAX_THREADS || out.contains(&t) {
                return Err(Error::corrupt(t, "thread list does not end"));
            }
            out.push(t);
            t = self.ptr(t + l.tstate_next as u64)?;
        }
        Ok(out)
    }

    /// The frame a thread state is executing, or 0.
    pub fn current_frame(&mut self, tstate: u64) -> Result<u64> {
        let l = self.py.layout;
        if l.has(l.tstate_current_frame) {
            return self.ptr(tstate + l.tstate_current_frame as u64);
        }
        let cframe = self.ptr(tstate + l.tstate_cframe as u64)?;
        if cframe == 0 {
            return Ok(0);
        }
        self.ptr(cframe + l.cframe_current_frame as u64)
    }

    /// Whether `code` is 3.13's `_Py_InitCleanup`: a code object compiled into the
    /// interpreter (not on the heap), named `__init__` in a file named `__init__`. Its
    /// symbol is local (only in `.symtab`, too slow to parse here), so it is recognised
    /// by those traits once and then by address.
    fn is_init_cleanup(&mut self, code: u64) -> Result<bool> {
        if let Some(known) = self.init_cleanup_code {
            return Ok(known == code);
        }
        if self.py.version.minor < 13 {
            return Ok(false); // no such shim before 3.13: spare the walk over the maps
        }
        let l = self.py.layout;
        let binary = &self.py.binary;
        let in_image = self.py.maps.iter().any(|m| m.start <= code && code < m.end && m.path.as_deref() == Some(binary.as_path()));
        if code == 0 || !in_image || !self.is_exact(code, crate::process::BuiltinType::Code)? {
            return Ok(false);
        }
        let (name, file) = (self.ptr(code + l.code_name as u64)?, self.ptr(code + l.code_filename as u64)?);
        let is_shim = self.read_str(name)?.as_text() == "__init__" && self.read_str(file)?.as_text() == "__init__";
        if is_shim {
            self.init_cleanup_code = Some(code);
        }
        Ok(is_shim)
    }

    /// Frame addresses of a thread, innermost first, without C-stack shim frames.
    pub fn frame_chain(&mut self, tstate: u64) -> Result<Vec<u64>> {
        let l = self.py.layout;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut f = self.current_frame(tstate)?;
        while f != 0 {
            // Count every frame visited (skipped shims too): a racing or dying process
            // can leave a `previous` chain that loops.
            if seen.len() >= MAX_FRAMES || !seen.insert(f) {
                return Err(Error::corrupt(f, "frame chain does not end (the process changed while being read)"));
            }
            let owner = self.read(f + l.frame_owner as u64, 1)?[0] as i8 as i32;
            let code_addr = self.ptr(f + l.frame_executable as u64)?;
            if self.is_init_cleanup(code_addr)? {
                // Not a Python frame of the program (Python's own tracebacks skip it):
                // it only hands `self` to the caller when `__init__` returns.
                if let Some(&inner) = out.last() {
                    self.init_cleanup_inner.insert(inner);
                }
            } else if owner != l.frame_owned_by_cstack && self.frame_code(f)?.is_some() {
                out.push(f);
            }
            f = self.ptr(f + l.frame_previous as u64)?;
        }
        Ok(out)
    }

    /// Read one thread completely.
    pub fn read_thread(&mut self, tstate: u64, is_main: bool) -> Result<ThreadInfo> {
        let l = self.py.layout;
        let raw = self.read(tstate, l.tstate_native_thread_id + 8)?;
        let u = |off: usize| u64::from_le_bytes(raw[off..off + 8].try_into().unwrap_or([0; 8]));
        let (thread_id, native_thread_id) = (u(l.tstate_thread_id), u(l.tstate_native_thread_id));
        let chain = self.frame_chain(tstate)?;
        let mut frames = Vec::with_capacity(chain.len());
        for (i, f) in chain.iter().enumerate() {
            // Only the innermost frame is executing; callers of Python functions saved
            // their stack pointer, callers through C did not (static depth then).
            frames.push(self.read_frame(*f, i > 0)?);
        }
        let handled_exception = self.handled_exception(tstate)?;
        let name = ptrace_tools::threads::thread_name(self.py.pid, native_thread_id as i32);
        Ok(ThreadInfo { tstate, thread_id, native_thread_id, name, is_main, frames, handled_exception })
    }

    /// A thread with only the given frames (innermost first), all of them callers.
    pub fn read_thread_frames(&mut self, tstate: u64, chain: &[u64]) -> Result<ThreadInfo> {
        let l = self.py.layout;
        let raw = self.read(tstate, l.tstate_native_thread_id + 8)?;
        let u = |off: usize| u64::from_le_bytes(raw[off..off + 8].try_into().unwrap_or([0; 8]));
        let (thread_id, native_thread_id) = (u(l.tstate_thread_id), u(l.tstate_native_thread_id));
        let mut frames = Vec::with_capacity(chain.len());
        for f in chain {
            frames.push(self.read_frame(*f, true)?);
        }
        let handled_exception = self.handled_exception(tstate)?;
        Ok(ThreadInfo { tstate, thread_id, native_thread_id, name: None, is_main: true, frames, handled_exception })
    }

    /// The topmost non-None exception of the thread's exc_info chain.
    fn handled_exception(&mut self, tstate: u64) -> Result<Option<ObjId>> {
        let l = self.py.layout;
        let mut item = self.ptr(tstate + l.tstate_exc_info as u64)?;
        let mut hops = 0;
        while item != 0 && hops < 10_000 {
            let exc = self.ptr(item + l.err_stack_item_exc_value as u64)?;
            if exc != 0 && exc != self.py.symbols.none {
                return Ok(self.object(exc));
            }
            item = self.ptr(item + l.err_stack_item_previous as u64)?;
            hops += 1;
        }
        Ok(None)
    }

    /// Every thread, main thread first.
    pub fn read_threads(&mut self) -> Result<Vec<ThreadInfo>> {
        let states = self.thread_states()?;
        let main = self.main_thread_state()?;
        let mut out = Vec::new();
        for t in states {
            out.push(self.read_thread(t, Some(t) == main)?);
        }
        out.sort_by_key(|t| !t.is_main);
        Ok(out)
    }

    /// The main thread's state: the thread whose native id is the process id.
    pub(crate) fn main_thread_state(&mut self) -> Result<Option<u64>> {
        let l = self.py.layout;
        for t in self.thread_states()? {
            let native = self.ptr(t + l.tstate_native_thread_id as u64)?;
            if native as i32 == self.py.pid {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}
