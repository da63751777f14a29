//! A copy of the target's writable memory, taken while it is stopped.
//!
//! The target only has to stay stopped for a few large `process_vm_readv` calls; the
//! (slower) object decoding then runs against the copy while the target runs again.
//! Read-only mappings (code, rodata such as `tp_name` strings) cannot change, so reads
//! outside the copied regions go to the live process.

use ptrace_tools::maps::MapRegion;
use ptrace_tools::memory::{MemoryReader, ProcessMemory};

pub struct MemoryCopy {
    live: ProcessMemory,
    /// (start, bytes), sorted by start, non-overlapping.
    regions: Vec<(u64, Vec<u8>)>,
    pub copied_bytes: usize,
}

/// Buffers for a coming copy, allocated and faulted in before the target is stopped:
/// page faults on fresh memory cost more than the copy itself, and need not be paid while
/// the target waits.
#[derive(Default)]
pub struct PreparedBuffers {
    by_region: rustc_hash::FxHashMap<(u64, u64), Vec<u8>>,
}

fn copied_region(m: &MapRegion) -> bool {
    m.readable && m.writable && !matches!(m.path.as_ref().and_then(|p| p.to_str()), Some("[vvar]" | "[vsyscall]" | "[vdso]" | "[stack]"))
}

impl PreparedBuffers {
    /// One buffer per writable mapping of `maps` that a copy would take, except what looks
    /// like a thread stack (an anonymous mapping right above a no-access guard page: its
    /// megabytes are skipped by the copy anyway).
    pub fn for_maps(maps: &[MapRegion], max_total: usize) -> Self {
        let mut out = PreparedBuffers::default();
        let mut total = 0usize;
        for (i, m) in maps.iter().enumerate() {
            let guarded = i > 0 && {
                let g = &maps[i - 1];
                g.end == m.start && !g.readable && !g.writable && g.path.is_none() && g.size() <= 64 << 10
            };
            if !copied_region(m) || (guarded && m.path.is_none()) {
                continue;
            }
            let len = m.size() as usize;
            total += len;
            if total > max_total {
                return PreparedBuffers::default();
            }
            let mut buf = vec![0u8; len];
            for page in (0..len).step_by(4096) {
                // SAFETY: in bounds; a volatile write so the fault-in is not optimised away.
                unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(page), 0) };
            }
            out.by_region.insert((m.start, m.end), buf);
        }
        out
    }
}

impl MemoryCopy {
    /// `take`, reusing buffers prepared for regions that have not changed since.
    pub fn take_prepared(pid: i32, maps: &[MapRegion], max_total: usize, skip: &[u64], mut prepared: PreparedBuffers) -> Option<Self> {
        Self::take_with(pid, maps, max_total, skip, |m| prepared.by_region.remove(&(m.start, m.end)))
    }

    /// Copy every writable mapping. Regions that cannot be read (vanished, guard pages)
    /// are left to live reads.
    /// `skip` holds addresses (threads' stack pointers) whose regions are copied only from
    /// the stack pointer up: a thread stack is megabytes of mostly untouched pages.
    pub fn take(pid: i32, maps: &[MapRegion], max_total: usize, skip: &[u64]) -> Option<Self> {
        Self::take_with(pid, maps, max_total, skip, |_| None)
    }

    fn take_with(
        pid: i32,
        maps: &[MapRegion],
        max_total: usize,
        skip: &[u64],
        mut buffer_for: impl FnMut(&MapRegion) -> Option<Vec<u8>>,
    ) -> Option<Self> {
        let live = ProcessMemory::new(pid);
        let wanted: Vec<&MapRegion> = maps
            .iter()
            .filter(|m| m.readable && m.writable)
            .filter(|m| !skip.iter().any(|&a| m.start <= a && a < m.end))
            .filter(|m| !matches!(m.path.as_ref().and_then(|p| p.to_str()), Some("[vvar]" | "[vsyscall]" | "[vdso]")))
            .collect();
        let total: u64 = wanted.iter().map(|m| m.end - m.start).sum();
        if total as usize > max_total {
            return None;
        }
        let mut regions = Vec::with_capacity(wanted.len());
        let mut copied = 0;
        for m in wanted {
            let len = (m.end - m.start) as usize;
            let mut buf = buffer_for(m).filter(|b| b.len() == len).unwrap_or_else(|| vec![0u8; len]);
            if live.read(m.start, &mut buf).is_ok() {
                copied += len;
                regions.push((m.start, buf));
            }
        }
        // A thread stack's live part (from just below its stack pointer to the top) holds
        // interpreter structures too (3.11/3.12's `_PyCFrame`, entry frames): copy that
        // part, so a reading after the target runs again is of one moment.
        for &sp in skip {
            let Some(m) = maps.iter().find(|m| m.readable && m.writable && m.start <= sp && sp < m.end) else { continue };
            let from = (sp.saturating_sub(512) & !4095).max(m.start);
            let mut buf = vec![0u8; (m.end - from) as usize];
            if !regions.iter().any(|(start, _)| *start == from) && live.read(from, &mut buf).is_ok() {
                copied += buf.len();
                regions.push((from, buf));
            }
        }
        regions.sort_by_key(|r| r.0);
        Some(MemoryCopy { live, regions, copied_bytes: copied })
    }
}

impl MemoryReader for MemoryCopy {
    fn read(&self, addr: u64, buf: &mut [u8]) -> ptrace_tools::Result<()> {
        let i = self.regions.partition_point(|(start, _)| *start <= addr);
        if i > 0 {
            let (start, data) = &self.regions[i - 1];
            let off = (addr - start) as usize;
            if off + buf.len() <= data.len() {
                buf.copy_from_slice(&data[off..off + buf.len()]);
                return Ok(());
            }
        }
        self.live.read(addr, buf)
    }
}

/// Reads from a stopped process through a cache of 64 KiB blocks: the many small reads of
/// object decoding cost one `process_vm_readv` per block touched, and large reads (a
/// 100 MB bytes object) go straight into their buffer. Nothing is copied up front, so
/// the cost follows what is read, not the size of the process. Valid only while the
/// process stays stopped.
pub struct BlockCache {
    live: ProcessMemory,
    blocks: std::cell::RefCell<rustc_hash::FxHashMap<u64, Option<Box<[u8]>>>>,
}

const BLOCK: u64 = 64 << 10;

impl BlockCache {
    pub fn new(pid: i32) -> Self {
        BlockCache { live: ProcessMemory::new(pid), blocks: Default::default() }
    }

    /// Copy `[addr, addr + buf.len())`, all inside one block, from the cache; `false` if
    /// that block cannot be read whole (the edge of a mapping).
    fn copy_from_block(&self, addr: u64, buf: &mut [u8]) -> bool {
        let index = addr / BLOCK;
        let mut blocks = self.blocks.borrow_mut();
        let block = blocks.entry(index).or_insert_with(|| {
            let mut data = vec![0u8; BLOCK as usize].into_boxed_slice();
            self.live.read(index * BLOCK, &mut data).ok().map(|_| data)
        });
        match block {
            Some(data) => {
                let off = (addr - index * BLOCK) as usize;
                buf.copy_from_slice(&data[off..off + buf.len()]);
                true
            }
            None => false,
        }
    }
}

impl MemoryReader for BlockCache {
    fn read(&self, addr: u64, buf: &mut [u8]) -> ptrace_tools::Result<()> {
        if buf.len() as u64 >= BLOCK / 4 {
            return self.live.read(addr, buf);
        }
        let mut done = 0;
        while done < buf.len() {
            let at = addr + done as u64;
            let n = ((BLOCK - at % BLOCK) as usize).min(buf.len() - done);
            if !self.copy_from_block(at, &mut buf[done..done + n]) {
                return self.live.read(addr, buf);
            }
            done += n;
        }
        Ok(())
    }
}
