//! ELF symbol lookup, and turning a file symbol into an address in a process.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::SHN_UNDEF;
use goblin::elf::sym::{Symtab, STB_LOCAL, STT_SECTION};
use goblin::elf::Elf;
use goblin::strtab::Strtab;

use crate::error::{Error, Result};
use crate::maps::MapRegion;

const PAGE_SIZE: u64 = 4096;

/// A defined symbol: its link-time value (virtual address) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfSymbol {
    pub value: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    sym: ElfSymbol,
    local: bool,
}

/// An ELF file parsed once; symbol tables are kept as name → symbol maps.
#[derive(Debug, Clone)]
pub struct ElfFile {
    /// The path the caller asked for (for mapped files: the path in the
    /// target's mount namespace, as in `/proc/PID/maps`).
    pub path: PathBuf,
    /// The path actually opened (may be `/proc/PID/root/...` or `/proc/PID/map_files/...`).
    pub opened_from: PathBuf,
    /// `(st_dev, st_ino)` of the opened file, used to recognise its mappings
    /// when paths differ between mount namespaces.
    dev_ino: Option<(u64, u64)>,
    dynsyms: HashMap<String, Entry>,
    /// `.symtab`, collected on the first lookup the dynamic symbols cannot answer:
    /// a debug build's symtab is tens of thousands of names we rarely need.
    syms: std::sync::Arc<std::sync::OnceLock<HashMap<String, Entry>>>,
    file: std::sync::Arc<Mapped>,
    lowest_load_vaddr: u64,
    /// `(p_vaddr, p_filesz, p_offset, executable)` of each PT_LOAD segment.
    loads: Vec<(u64, u64, u64, bool)>,
}

/// A read-only private mapping of a whole file (no copy of a 30 MB library).
#[derive(Debug)]
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: `Mapped` owns its mapping (munmap only in Drop) and never writes through
// `ptr`: the pages are PROT_READ, so shared `&[u8]` access from several threads, and
// dropping on another thread, are as sound as for a `Box<[u8]>`.
unsafe impl Send for Mapped {}
// SAFETY: as for Send: only shared reads of a read-only mapping.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn new(file: &std::fs::File, len: usize) -> std::io::Result<Mapped> {
        use std::os::unix::io::AsRawFd;
        if len == 0 {
            return Ok(Mapped { ptr: std::ptr::null_mut(), len: 0 });
        }
        // SAFETY: a new mapping at an address the kernel picks (null hint, no MAP_FIXED),
        // so no existing memory of ours is replaced; `file` is open for reading, matching
        // PROT_READ, and `len` > 0. The result is checked against MAP_FAILED below.
        // What the mapping holds is trusted in `bytes()`.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is the start of a live mapping of `len` readable bytes, unmapped
        // only in Drop, so the slice, borrowed from `self`, cannot outlive it. The
        // contract (as for any mmap'ed file, cf. memmap2's `Mmap::map`) is that the file
        // is not truncated or rewritten in place while mapped: truncation would turn
        // reads past the new end into SIGBUS, an in-place rewrite would change bytes
        // behind a `&[u8]`. The files mapped here are ELF objects a live process has
        // mapped (its executable and libraries), which are replaced by rename, not
        // rewritten, since that would crash the process itself.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: (`ptr`, `len`) is exactly the mapping `new` made, unmapped once here;
            // no slice from `bytes()` outlives `self`, so nothing refers to it any more.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

fn collect(symtab: &Symtab, strtab: &Strtab) -> HashMap<String, Entry> {
    let mut out: HashMap<String, Entry> = HashMap::new();
    for sym in symtab.iter() {
        // Undefined entries are imports (value 0); section symbols have no name worth keeping.
        if sym.st_shndx == SHN_UNDEF as usize || sym.st_type() == STT_SECTION {
            continue;
        }
        let Some(name) = strtab.get_at(sym.st_name).filter(|n| !n.is_empty()) else {
            continue;
        };
        let entry = Entry { sym: ElfSymbol { value: sym.st_value, size: sym.st_size }, local: sym.st_bind() == STB_LOCAL };
        // Several static functions may share a name; a global definition wins.
        match out.get(name) {
            Some(old) if !old.local || entry.local => {}
            _ => {
                out.insert(name.to_string(), entry);
            }
        }
    }
    out
}

impl ElfFile {
    /// Parse the ELF file at `path` (as seen from this process).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_from(path, path)
    }

    /// Parse a file named by its path inside process `pid`'s mount namespace:
    /// tries `/proc/PID/root/<path>` first (chroot'ed or containerised
    /// targets), then `path` itself.
    pub fn open_in_process(pid: i32, path: &Path) -> Result<Self> {
        let mut last_err = None;
        for candidate in candidates(pid, path, None) {
            match Self::open_from(path, &candidate) {
                Ok(f) => return Ok(f),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Elf { path: path.to_path_buf(), detail: "no way to open the file".into() }))
    }

    /// Parse the file behind a mapping of process `pid`. Like
    /// [`ElfFile::open_in_process`], plus `/proc/PID/map_files/START-END` as a
    /// last resort, which still reaches files deleted or replaced on disk
    /// since they were mapped (needs CAP_SYS_ADMIN).
    pub fn open_mapped(pid: i32, region: &MapRegion) -> Result<Self> {
        let path = region
            .path
            .as_deref()
            .ok_or_else(|| Error::Elf { path: PathBuf::from(&region.pathname), detail: "mapping is not backed by a file".into() })?;
        let mut last_err = None;
        for candidate in candidates(pid, path, Some(region)) {
            match Self::open_from(path, &candidate) {
                Ok(f) => return Ok(f),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Elf { path: path.to_path_buf(), detail: "no way to open the file".into() }))
    }

    fn open_from(path: &Path, opened_from: &Path) -> Result<Self> {
        let elf_err = |detail: String| Error::Elf { path: path.to_path_buf(), detail };
        let file = std::fs::File::open(opened_from).map_err(|e| elf_err(format!("cannot open {}: {e}", opened_from.display())))?;
        let meta = file.metadata().map_err(|e| elf_err(format!("cannot stat {}: {e}", opened_from.display())))?;
        // Refuse devices and directories: reading /dev/zero would never end.
        if !meta.is_file() {
            return Err(elf_err(format!("{} is not a regular file", opened_from.display())));
        }
        let dev_ino = Some((meta.dev(), meta.ino()));
        let mapped = Mapped::new(&file, meta.len() as usize).map_err(|e| elf_err(format!("cannot map {}: {e}", opened_from.display())))?;
        let elf = Elf::parse(mapped.bytes()).map_err(|e| elf_err(format!("not a valid ELF file: {e}")))?;
        let lowest_load_vaddr = elf
            .program_headers
            .iter()
            .filter(|ph| ph.p_type == PT_LOAD)
            .map(|ph| ph.p_vaddr & !(PAGE_SIZE - 1))
            .min()
            .ok_or_else(|| elf_err("no PT_LOAD segment".into()))?;
        let loads = elf
            .program_headers
            .iter()
            .filter(|ph| ph.p_type == PT_LOAD)
            .map(|ph| (ph.p_vaddr, ph.p_filesz, ph.p_offset, ph.is_executable()))
            .collect();
        let dynsyms = collect(&elf.dynsyms, &elf.dynstrtab);
        drop(elf);
        Ok(ElfFile {
            path: path.to_path_buf(),
            opened_from: opened_from.to_path_buf(),
            dev_ino,
            dynsyms,
            syms: Default::default(),
            file: std::sync::Arc::new(mapped),
            lowest_load_vaddr,
            loads,
        })
    }

    fn symtab(&self) -> &HashMap<String, Entry> {
        self.syms.get_or_init(|| match Elf::parse(self.file.bytes()) {
            Ok(elf) => collect(&elf.syms, &elf.strtab),
            Err(_) => HashMap::new(),
        })
    }

    /// Look a symbol up: dynamic symbols first, then `.symtab` (if not stripped).
    pub fn symbol(&self, name: &str) -> Option<ElfSymbol> {
        self.dynsyms.get(name).or_else(|| self.symtab().get(name)).map(|e| e.sym)
    }

    /// Look a symbol up among the dynamic (exported) symbols only: cheap, never parses
    /// `.symtab`.
    pub fn dynamic_symbol(&self, name: &str) -> Option<ElfSymbol> {
        self.dynsyms.get(name).map(|e| e.sym)
    }

    /// Whether the file still has a `.symtab` (i.e. is not stripped).
    pub fn has_symtab(&self) -> bool {
        !self.symtab().is_empty()
    }

    /// The whole file, as mapped.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    pub(crate) fn loads(&self) -> &[(u64, u64, u64, bool)] {
        &self.loads
    }

    /// Lowest `p_vaddr` of the PT_LOAD segments, rounded down to a page.
    pub fn lowest_load_vaddr(&self) -> u64 {
        self.lowest_load_vaddr
    }

    /// Whether a mapping is backed by this file: same path, or the same
    /// device and inode (paths differ when the target is in another mount
    /// namespace).
    pub fn is_mapped_by(&self, region: &MapRegion) -> bool {
        if region.path.as_deref() == Some(self.path.as_path()) {
            return true;
        }
        match self.dev_ino {
            Some((dev, ino)) if region.inode != 0 => region.inode == ino && (libc::major(dev), libc::minor(dev)) == region.dev,
            _ => false,
        }
    }

    /// Load bias of this file in a process: the start of its offset-0 mapping
    /// minus the lowest PT_LOAD vaddr. `None` when the file is not mapped.
    pub fn load_bias_in_process(&self, maps: &[MapRegion]) -> Option<u64> {
        let base = maps.iter().filter(|r| r.offset == 0 && self.is_mapped_by(r)).map(|r| r.start).min()?;
        Some(base.wrapping_sub(self.lowest_load_vaddr))
    }
}

fn candidates(pid: i32, path: &Path, region: Option<&MapRegion>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if pid > 0 && path.is_absolute() {
        let mut rooted = PathBuf::from(format!("/proc/{pid}/root"));
        // Pushing an absolute path would replace the prefix, so push it relative.
        rooted.push(path.strip_prefix("/").unwrap_or(path));
        out.push(rooted);
    }
    out.push(path.to_path_buf());
    if let Some(r) = region.filter(|_| pid > 0) {
        out.push(PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", r.start, r.end)));
    }
    out
}

/// Address of `symbol` of the mapped file `elf` in a process with memory map
/// `maps`: start of the file's offset-0 mapping + value − lowest PT_LOAD vaddr.
pub fn symbol_address_in_process(maps: &[MapRegion], elf: &ElfFile, symbol: &str) -> Option<u64> {
    let sym = elf.symbol(symbol)?;
    let bias = elf.load_bias_in_process(maps)?;
    Some(bias.wrapping_add(sym.value))
}

/// Like [`symbol_address_in_process`], for exported symbols only.
pub fn dynamic_symbol_address_in_process(maps: &[MapRegion], elf: &ElfFile, symbol: &str) -> Option<u64> {
    let sym = elf.dynamic_symbol(symbol)?;
    let bias = elf.load_bias_in_process(maps)?;
    Some(bias.wrapping_add(sym.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_symbols() {
        let exe = std::env::current_exe().unwrap();
        let elf = ElfFile::open(&exe).unwrap();
        // Test binaries are not stripped; main is in .symtab.
        let main = elf.symbol("main").expect("main symbol");
        assert!(main.value >= elf.lowest_load_vaddr());
        assert_eq!(elf.lowest_load_vaddr() % PAGE_SIZE, 0);
        assert!(elf.symbol("definitely_not_a_symbol_name_42").is_none());

        let me = std::process::id() as i32;
        let maps = crate::maps::read_maps(me).unwrap();
        let elf2 = ElfFile::open_in_process(me, &exe).unwrap();
        assert!(elf2.opened_from.starts_with("/proc"));
        let addr = symbol_address_in_process(&maps, &elf2, "main").unwrap();
        let region = crate::maps::find_region(&maps, addr).expect("main is mapped");
        assert!(region.executable);
    }

    #[test]
    fn bad_files() {
        assert!(matches!(ElfFile::open(Path::new("/nonexistent/x")), Err(Error::Elf { .. })));
        assert!(matches!(ElfFile::open(Path::new("/proc/self/status")), Err(Error::Elf { .. })));
        assert!(matches!(ElfFile::open(Path::new("/")), Err(Error::Elf { .. })));
        assert!(matches!(ElfFile::open(Path::new("/dev/zero")), Err(Error::Elf { .. })));
        assert!(ElfFile::open_in_process(-1, Path::new("relative")).is_err());
    }
}
