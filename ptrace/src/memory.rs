//! Reading and writing another process' memory.
//!
//! `process_vm_readv`/`process_vm_writev` are the fast path (one syscall, no
//! ptrace-stop needed). `/proc/PID/mem` is the fallback: it works where those
//! syscalls are unavailable (ENOSYS, seccomp) and, because the kernel uses
//! FOLL_FORCE for it, it can also reach pages the target mapped PROT_NONE or
//! read-only.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::threads::process_exists;

/// Largest single read we accept. Lengths often come from the target's own
/// (possibly corrupt) data; refusing absurd ones avoids aborting on allocation.
pub const MAX_READ_LEN: usize = 1 << 30;

/// Kernel limit on iovec entries per process_vm_readv call (UIO_MAXIOV).
const IOV_MAX: usize = 1024;

fn invalid_range(addr: u64, len: usize, why: &str) -> Error {
    Error::MemoryRead { addr, len, source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string()) }
}

/// Reject ranges that wrap around the address space or are absurdly long.
fn check_range(addr: u64, len: usize) -> Result<()> {
    if len > MAX_READ_LEN {
        return Err(invalid_range(addr, len, "length exceeds MAX_READ_LEN"));
    }
    if addr.checked_add(len as u64).is_none() {
        return Err(invalid_range(addr, len, "range wraps around the address space"));
    }
    Ok(())
}

fn read_array<R: MemoryReader + ?Sized, const N: usize>(r: &R, addr: u64) -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read(addr, &mut buf)?;
    Ok(buf)
}

/// Something that can read bytes at addresses of some address space.
///
/// Upper layers take `&impl MemoryReader` (or `&dyn MemoryReader`) so they can
/// be unit-tested against [`FakeMemory`]. Integers are decoded in native byte
/// order: the target runs on the same machine as the reader.
pub trait MemoryReader {
    /// Fill `buf` from `addr`; a short read is an error.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;

    /// Read several ranges; implementations may batch them. Stops at the
    /// first range that cannot be read.
    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> Result<()> {
        for (addr, buf) in requests.iter_mut() {
            self.read(*addr, buf)?;
        }
        Ok(())
    }

    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        check_range(addr, len)?;
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }

    fn read_u64(&self, addr: u64) -> Result<u64> {
        read_array(self, addr).map(u64::from_ne_bytes)
    }
    fn read_i64(&self, addr: u64) -> Result<i64> {
        read_array(self, addr).map(i64::from_ne_bytes)
    }
    fn read_u32(&self, addr: u64) -> Result<u32> {
        read_array(self, addr).map(u32::from_ne_bytes)
    }
    fn read_i32(&self, addr: u64) -> Result<i32> {
        read_array(self, addr).map(i32::from_ne_bytes)
    }
    fn read_u16(&self, addr: u64) -> Result<u16> {
        read_array(self, addr).map(u16::from_ne_bytes)
    }
    fn read_u8(&self, addr: u64) -> Result<u8> {
        read_array::<_, 1>(self, addr).map(|b| b[0])
    }
    /// A pointer-sized value (the target is 64-bit).
    fn read_ptr(&self, addr: u64) -> Result<u64> {
        self.read_u64(addr)
    }

    /// Bytes of a NUL-terminated string at `addr`, without the NUL, reading at
    /// most `max_len` bytes. Reads page by page so a string that ends just
    /// before an unmapped page is still readable.
    fn read_cstr(&self, addr: u64, max_len: usize) -> Result<Vec<u8>> {
        const PAGE: u64 = 4096;
        check_range(addr, max_len)?;
        let mut out = Vec::new();
        let mut cur = addr;
        while out.len() < max_len {
            let to_page_end = (PAGE - cur % PAGE) as usize;
            let chunk = to_page_end.min(max_len - out.len());
            let mut buf = vec![0u8; chunk];
            if self.read(cur, &mut buf).is_err() {
                // The string may end just before an unreadable byte inside
                // this chunk (finer-grained readers): go byte by byte.
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = self.read_u8(cur + i as u64)?;
                    if *b == 0 {
                        break;
                    }
                }
            }
            if let Some(nul) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            cur += chunk as u64;
        }
        Err(Error::MemoryRead {
            addr,
            len: max_len,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no NUL terminator within max_len"),
        })
    }
}

impl<T: MemoryReader + ?Sized> MemoryReader for &T {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(addr, buf)
    }
    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> Result<()> {
        (**self).read_many(requests)
    }
}

/// Cheap handle on the memory of one process. Does not need the process to
/// be ptrace-stopped, but reads of a running process may see torn data.
#[derive(Debug)]
pub struct ProcessMemory {
    pid: i32,
    /// `/proc/PID/mem`, opened on first need and kept (reopening per read is slow).
    mem_read: OnceLock<File>,
    mem_write: OnceLock<File>,
    /// Set after process_vm_* returned EPERM/ENOSYS once: go straight to /proc.
    vm_unavailable: AtomicBool,
    /// Whether any access succeeded: tells "exited meanwhile" from "never existed".
    seen_alive: AtomicBool,
}

impl Clone for ProcessMemory {
    fn clone(&self) -> Self {
        let c = ProcessMemory::new(self.pid);
        c.vm_unavailable.store(self.vm_unavailable.load(Ordering::Relaxed), Ordering::Relaxed);
        c.seen_alive.store(self.seen_alive.load(Ordering::Relaxed), Ordering::Relaxed);
        c
    }
}

enum Dir {
    Read,
    Write,
}

impl ProcessMemory {
    pub fn new(pid: i32) -> Self {
        ProcessMemory {
            pid,
            mem_read: OnceLock::new(),
            mem_write: OnceLock::new(),
            vm_unavailable: AtomicBool::new(false),
            seen_alive: AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn gone(&self) -> Error {
        if self.seen_alive.load(Ordering::Relaxed) {
            Error::ProcessExited { pid: self.pid }
        } else {
            Error::NoSuchProcess { pid: self.pid }
        }
    }

    fn mark_alive(&self) {
        self.seen_alive.store(true, Ordering::Relaxed);
    }

    fn mem_error(&self, dir: &Dir, addr: u64, len: usize, source: std::io::Error) -> Error {
        match dir {
            Dir::Read => Error::MemoryRead { addr, len, source },
            Dir::Write => Error::MemoryWrite { addr, len, source },
        }
    }

    fn proc_mem(&self, dir: &Dir) -> std::io::Result<&File> {
        let (cell, write) = match dir {
            Dir::Read => (&self.mem_read, false),
            Dir::Write => (&self.mem_write, true),
        };
        if let Some(f) = cell.get() {
            return Ok(f);
        }
        let f = OpenOptions::new().read(true).write(write).open(format!("/proc/{}/mem", self.pid))?;
        // Another thread may have won the race; either file is fine.
        Ok(cell.get_or_init(|| f))
    }

    /// Turn a failure of the fallback path into the most useful error.
    /// `primary` is what process_vm_* said, if it was tried.
    fn fallback_error(&self, dir: &Dir, addr: u64, len: usize, err: std::io::Error, primary: Option<Errno>) -> Error {
        match err.raw_os_error() {
            Some(libc::ESRCH) | Some(libc::ENOENT) if !process_exists(self.pid) => self.gone(),
            // /proc/PID/mem of an exited process reads as EOF / fails with EIO:
            // say "exited" rather than blaming the address.
            _ if self.pid > 0 && !process_exists(self.pid) => self.gone(),
            Some(libc::EACCES) | Some(libc::EPERM) => match primary {
                // The syscall already said the address is bad: that is the real story.
                Some(Errno::EFAULT) => self.mem_error(dir, addr, len, std::io::Error::from_raw_os_error(libc::EFAULT)),
                _ => Error::PermissionDenied { pid: self.pid, detail: format!("cannot open /proc/{}/mem: {err}", self.pid) },
            },
            _ => self.mem_error(dir, addr, len, err),
        }
    }

    /// Read through `/proc/PID/mem` only (bypassing process_vm_readv). Reaches
    /// PROT_NONE pages too.
    pub fn read_proc_mem(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.proc_mem_read(addr, buf, None)
    }

    fn proc_mem_read(&self, addr: u64, buf: &mut [u8], primary: Option<Errno>) -> Result<()> {
        check_range(addr, buf.len())?;
        if self.pid <= 0 {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        let len = buf.len();
        let file = self.proc_mem(&Dir::Read).map_err(|e| self.fallback_error(&Dir::Read, addr, len, e, primary))?;
        let mut done = 0;
        while done < len {
            match file.read_at(&mut buf[done..], addr + done as u64) {
                Ok(0) => {
                    let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short read from /proc/PID/mem");
                    return Err(self.fallback_error(&Dir::Read, addr, len, eof, primary));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fallback_error(&Dir::Read, addr, len, e, primary)),
            }
        }
        self.mark_alive();
        Ok(())
    }

    fn proc_mem_write(&self, addr: u64, data: &[u8], primary: Option<Errno>) -> Result<()> {
        let len = data.len();
        let file = self.proc_mem(&Dir::Write).map_err(|e| self.fallback_error(&Dir::Write, addr, len, e, primary))?;
        let mut done = 0;
        while done < len {
            match file.write_at(&data[done..], addr + done as u64) {
                Ok(0) => {
                    let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "short write to /proc/PID/mem");
                    return Err(self.fallback_error(&Dir::Write, addr, len, e, primary));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fallback_error(&Dir::Write, addr, len, e, primary)),
            }
        }
        self.mark_alive();
        Ok(())
    }

    /// process_vm_readv failed without transferring anything: decide whether
    /// to fall back or to report the process as gone.
    fn vm_failed(&self, errno: Errno) -> Result<()> {
        match errno {
            Errno::ESRCH => Err(self.gone()),
            Errno::EPERM | Errno::ENOSYS => {
                self.vm_unavailable.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fill `buf` with the target's memory at `addr`. A short read is an error.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        check_range(addr, buf.len())?;
        if self.pid <= 0 {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        if self.vm_unavailable.load(Ordering::Relaxed) {
            return self.proc_mem_read(addr, buf, None);
        }
        let len = buf.len();
        let remote = [RemoteIoVec { base: addr as usize, len }];
        let res = process_vm_readv(Pid::from_raw(self.pid), &mut [IoSliceMut::new(buf)], &remote);
        match res {
            Ok(n) if n >= len => {
                self.mark_alive();
                Ok(())
            }
            // Partial: the rest may be on a page only /proc/PID/mem can reach.
            Ok(n) => {
                self.mark_alive();
                self.proc_mem_read(addr + n as u64, &mut buf[n..], Some(Errno::EFAULT)).map_err(|e| match e {
                    Error::MemoryRead { source, .. } => Error::MemoryRead { addr, len, source },
                    other => other,
                })
            }
            Err(errno) => {
                self.vm_failed(errno)?;
                self.proc_mem_read(addr, buf, Some(errno))
            }
        }
    }

    /// Read many ranges with as few syscalls as possible (up to IOV_MAX ranges
    /// per process_vm_readv). A range the batch could not complete is retried
    /// alone with the /proc/PID/mem fallback; the first range that still
    /// fails aborts with its error.
    pub fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> Result<()> {
        if self.pid <= 0 {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        for (addr, buf) in requests.iter() {
            check_range(*addr, buf.len())?;
        }
        let mut i = 0;
        while i < requests.len() {
            if self.vm_unavailable.load(Ordering::Relaxed) {
                let (addr, buf) = &mut requests[i];
                self.proc_mem_read(*addr, buf, None)?;
                i += 1;
                continue;
            }
            let end = (i + IOV_MAX).min(requests.len());
            let batch = &mut requests[i..end];
            let remote: Vec<RemoteIoVec> = batch.iter().map(|(a, b)| RemoteIoVec { base: *a as usize, len: b.len() }).collect();
            let lens: Vec<usize> = batch.iter().map(|(_, b)| b.len()).collect();
            let res = {
                let mut local: Vec<IoSliceMut> = batch.iter_mut().map(|(_, b)| IoSliceMut::new(b)).collect();
                process_vm_readv(Pid::from_raw(self.pid), &mut local, &remote)
            };
            // The kernel stops at the first range it cannot copy, so the
            // ranges fully covered by the byte count are complete.
            let complete = match res {
                Ok(n) => {
                    self.mark_alive();
                    let mut total = 0usize;
                    lens.iter()
                        .take_while(|&&l| {
                            total += l;
                            total <= n
                        })
                        .count()
                }
                Err(errno) => {
                    self.vm_failed(errno)?;
                    0
                }
            };
            i += complete;
            if i < end {
                // Retry the failing range alone (falls back to /proc/PID/mem).
                let (addr, buf) = &mut requests[i];
                self.read(*addr, buf)?;
                i += 1;
            }
        }
        Ok(())
    }

    pub fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        MemoryReader::read_vec(self, addr, len)
    }
    pub fn read_u64(&self, addr: u64) -> Result<u64> {
        MemoryReader::read_u64(self, addr)
    }
    pub fn read_i64(&self, addr: u64) -> Result<i64> {
        MemoryReader::read_i64(self, addr)
    }
    pub fn read_u32(&self, addr: u64) -> Result<u32> {
        MemoryReader::read_u32(self, addr)
    }
    pub fn read_i32(&self, addr: u64) -> Result<i32> {
        MemoryReader::read_i32(self, addr)
    }
    pub fn read_u16(&self, addr: u64) -> Result<u16> {
        MemoryReader::read_u16(self, addr)
    }
    pub fn read_u8(&self, addr: u64) -> Result<u8> {
        MemoryReader::read_u8(self, addr)
    }
    pub fn read_ptr(&self, addr: u64) -> Result<u64> {
        MemoryReader::read_ptr(self, addr)
    }

    /// Write `data` at `addr`. Falls back to /proc/PID/mem, which can also
    /// write read-only (e.g. text) pages.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len();
        if addr.checked_add(len as u64).is_none() {
            return Err(Error::MemoryWrite {
                addr,
                len,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "range wraps around the address space"),
            });
        }
        if self.pid <= 0 {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        if self.vm_unavailable.load(Ordering::Relaxed) {
            return self.proc_mem_write(addr, data, None);
        }
        let remote = [RemoteIoVec { base: addr as usize, len }];
        match process_vm_writev(Pid::from_raw(self.pid), &[IoSlice::new(data)], &remote) {
            Ok(n) if n >= len => {
                self.mark_alive();
                Ok(())
            }
            Ok(n) => {
                self.mark_alive();
                self.proc_mem_write(addr + n as u64, &data[n..], Some(Errno::EFAULT))
            }
            Err(errno) => {
                self.vm_failed(errno)?;
                self.proc_mem_write(addr, data, Some(errno))
            }
        }
    }
}

impl MemoryReader for ProcessMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        ProcessMemory::read(self, addr, buf)
    }
    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> Result<()> {
        ProcessMemory::read_many(self, requests)
    }
}

/// In-memory stand-in for a process' address space, for unit tests of the
/// layers above. Each inserted region is readable on its own; a read must fit
/// inside one region, like a read crossing into an unmapped page would fail.
#[derive(Debug, Clone, Default)]
pub struct FakeMemory {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl FakeMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `bytes` at `addr` (replacing a region that starts at the same address).
    pub fn insert(&mut self, addr: u64, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.regions.insert(addr, bytes.into());
        self
    }

    pub fn insert_u64(&mut self, addr: u64, value: u64) -> &mut Self {
        self.insert(addr, value.to_ne_bytes().to_vec())
    }
}

impl MemoryReader for FakeMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        check_range(addr, buf.len())?;
        let fault = || Error::MemoryRead { addr, len: buf.len(), source: std::io::Error::from_raw_os_error(libc::EFAULT) };
        let (&start, data) = self.regions.range(..=addr).next_back().ok_or_else(fault)?;
        let off = usize::try_from(addr - start).map_err(|_| fault())?;
        let src = off.checked_add(buf.len()).and_then(|end| data.get(off..end)).ok_or_else(fault)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_memory_reads() {
        let mut m = FakeMemory::new();
        m.insert(0x1000, b"hello\0world".to_vec()).insert_u64(0x2000, 0xdead_beef);
        assert_eq!(m.read_vec(0x1000, 5).unwrap(), b"hello");
        assert_eq!(m.read_cstr(0x1000, 100).unwrap(), b"hello");
        assert_eq!(m.read_u64(0x2000).unwrap(), 0xdead_beef);
        assert_eq!(m.read_u32(0x2000).unwrap(), 0xdead_beef);
        assert!(m.read_u64(0x2004).is_err()); // crosses the end of the region
        assert!(m.read_u8(0xfff).is_err());
        assert!(m.read_u8(u64::MAX).is_err());
        assert!(m.read_vec(u64::MAX - 1, 8).is_err());
        assert!(m.read_vec(0, usize::MAX).is_err());
        // Through a trait object and a reference.
        let dynm: &dyn MemoryReader = &m;
        assert_eq!(dynm.read_u8(0x1006).unwrap(), b'w');
        let mut a = [0u8; 2];
        let mut b = [0u8; 3];
        MemoryReader::read_many(&&m, &mut [(0x1000, &mut a[..]), (0x1006, &mut b[..])]).unwrap();
        assert_eq!(&a, b"he");
        assert_eq!(&b, b"wor");
    }

    #[test]
    fn own_memory() {
        let me = std::process::id() as i32;
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mem = ProcessMemory::new(me);
        let addr = data.as_ptr() as u64;
        assert_eq!(mem.read_vec(addr, data.len()).unwrap(), data);
        let mut buf = vec![0u8; 100];
        mem.read_proc_mem(addr + 50, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[50..150]);
        assert!(matches!(mem.read_u64(8), Err(Error::MemoryRead { .. })));
        assert!(matches!(ProcessMemory::new(0).read_u64(addr), Err(Error::NoSuchProcess { .. })));
        assert!(matches!(ProcessMemory::new(-5).read_u64(addr), Err(Error::NoSuchProcess { .. })));
    }
}
