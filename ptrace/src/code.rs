//! Machine code of an ELF file: function address ranges from its unwind tables, and the
//! direct calls an address range makes.
//!
//! Stripped and LTO-built binaries have no symbols for static functions or for the cold
//! parts a compiler splits off a function, but `.eh_frame` still describes every function
//! (the unwinder needs it), so it is where their ranges come from.

use std::ops::Range;

use gimli::UnwindSection;
use goblin::elf::Elf;

use crate::elf::ElfFile;

impl ElfFile {
    /// Link-time address ranges of the functions (and function parts) that `.eh_frame`
    /// describes, sorted by start. Empty when the file has no unwind table.
    pub fn function_ranges(&self) -> Vec<Range<u64>> {
        let bytes = self.bytes();
        let Ok(elf) = Elf::parse(bytes) else { return Vec::new() };
        let section = |name: &str| elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name));
        let Some(eh) = section(".eh_frame") else { return Vec::new() };
        let Some(data) = bytes.get(eh.sh_offset as usize..).and_then(|b| b.get(..eh.sh_size as usize)) else {
            return Vec::new();
        };
        let mut bases = gimli::BaseAddresses::default().set_eh_frame(eh.sh_addr);
        if let Some(text) = section(".text") {
            bases = bases.set_text(text.sh_addr);
        }
        if let Some(got) = section(".got") {
            bases = bases.set_got(got.sh_addr);
        }
        let mut table = gimli::EhFrame::new(data, gimli::LittleEndian);
        table.set_address_size(8);
        let mut out = Vec::new();
        let mut entries = table.entries(&bases);
        // A malformed entry ends the walk: what was read so far is still right.
        while let Ok(Some(entry)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = entry {
                if let Ok(fde) = partial.parse(|t, b, o| t.cie_from_offset(b, o)) {
                    let start = fde.initial_address();
                    out.push(start..start.saturating_add(fde.len()));
                }
            }
        }
        out.sort_by_key(|r| r.start);
        out
    }

    /// The file's bytes loaded at link-time addresses `range`, when one loadable segment
    /// holds all of them from the file.
    pub fn bytes_at(&self, range: Range<u64>) -> Option<&[u8]> {
        let &(vaddr, _, offset, _) = self.loads().iter().find(|&&(vaddr, filesz, _, _)| vaddr <= range.start && range.end <= vaddr + filesz)?;
        let from = (offset + (range.start - vaddr)) as usize;
        self.bytes().get(from..from + (range.end - range.start) as usize)
    }
}

impl ElfFile {
    /// Link-time address of the first occurrence of `pattern` in an executable segment.
    pub fn find_in_code(&self, pattern: &[u8]) -> Option<u64> {
        self.loads().iter().filter(|l| l.3).find_map(|&(vaddr, filesz, offset, _)| {
            let code = self.bytes().get(offset as usize..(offset + filesz) as usize)?;
            code.windows(pattern.len()).position(|w| w == pattern).map(|i| vaddr + i as u64)
        })
    }
}

/// The function range holding `addr`, if any (`ranges` sorted by start).
pub fn range_containing(ranges: &[Range<u64>], addr: u64) -> Option<Range<u64>> {
    let i = ranges.partition_point(|r| r.start <= addr);
    ranges[..i].iter().rev().find(|r| r.contains(&addr)).cloned()
}

/// Targets of the direct x86-64 calls (`call rel32`) and jumps (`jmp rel32`, tail calls)
/// found in `code`, which is loaded at `base`.
///
/// The scan does not decode instructions, so a byte that merely looks like an opcode is
/// taken too: callers check what they find (that a target starts a function, say), which
/// makes such a false hit vanishingly unlikely to matter.
pub fn direct_branch_targets(code: &[u8], base: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..code.len().saturating_sub(4) {
        if code[i] == 0xe8 || code[i] == 0xe9 {
            let rel = i32::from_le_bytes([code[i + 1], code[i + 2], code[i + 3], code[i + 4]]);
            out.push((base + i as u64 + 5).wrapping_add(rel as i64 as u64));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn callee(x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }

    #[inline(never)]
    fn caller(x: u64) -> u64 {
        callee(std::hint::black_box(x)) * 2
    }

    #[test]
    fn own_functions_and_calls() {
        let exe = std::env::current_exe().unwrap();
        let elf = ElfFile::open(&exe).unwrap();
        let ranges = elf.function_ranges();
        assert!(ranges.len() > 100, "a test binary describes many functions");
        assert!(ranges.windows(2).all(|w| w[0].start <= w[1].start));
        assert_eq!(caller(1), 4);
        // Find the two functions through this process's own mapping of the binary.
        let me = std::process::id() as i32;
        let maps = crate::maps::read_maps(me).unwrap();
        let bias = elf.load_bias_in_process(&maps).unwrap();
        let (caller_at, callee_at) = (caller as *const () as u64 - bias, callee as *const () as u64 - bias);
        let range = range_containing(&ranges, caller_at).expect("caller has an FDE");
        assert_eq!(range.start, caller_at);
        let code = elf.bytes_at(range.clone()).expect("caller's code is in the file");
        assert!(direct_branch_targets(code, range.start).contains(&callee_at));
        assert!(range_containing(&ranges, 0).is_none());
    }

    #[test]
    fn scan_of_handmade_code() {
        // call +0 (to the next instruction), then jmp -10.
        let code = [0xe8, 0, 0, 0, 0, 0xe9, 0xf6, 0xff, 0xff, 0xff];
        let targets = direct_branch_targets(&code, 0x1000);
        assert!(targets.contains(&0x1005));
        assert!(targets.contains(&(0x100a - 10)));
    }
}
