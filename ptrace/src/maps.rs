//! Parsing `/proc/PID/maps`.

use std::path::{Path, PathBuf};

use crate::error::{check_pid, proc_io_error, Error, Result};

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRegion {
    pub start: u64,
    pub end: u64,
    /// Offset into the mapped file (0 for anonymous mappings).
    pub offset: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    /// `p` (private, copy-on-write) rather than `s` (shared).
    pub private: bool,
    /// Device as `(major, minor)`.
    pub dev: (u32, u32),
    pub inode: u64,
    /// Backing file, as seen from the target's mount namespace; `None` for
    /// anonymous and pseudo mappings (`[heap]`, `[stack]`, `[vdso]`...).
    /// A ` (deleted)` suffix is stripped and reported in `deleted`.
    pub path: Option<PathBuf>,
    /// The raw pathname column (e.g. `[heap]`, or empty for anonymous maps).
    pub pathname: String,
    /// The backing file was deleted (or replaced) after it was mapped.
    pub deleted: bool,
}

impl MapRegion {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Parse one maps line; `None` if it is malformed.
    pub fn parse_line(line: &str) -> Option<MapRegion> {
        let mut rest = line;
        let mut next_field = || {
            let trimmed = rest.trim_start_matches(' ');
            let end = trimmed.find(' ').unwrap_or(trimmed.len());
            let (field, tail) = trimmed.split_at(end);
            rest = tail;
            Some(field).filter(|f| !f.is_empty())
        };
        let range = next_field()?;
        let perms = next_field()?.as_bytes();
        let offset = u64::from_str_radix(next_field()?, 16).ok()?;
        let dev = next_field()?;
        let inode = next_field()?.parse::<u64>().ok()?;
        // The pathname is everything after the padding; it may contain spaces.
        let pathname = rest.trim_start_matches(' ').trim_end_matches('\n').to_string();

        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        if end < start || perms.len() < 4 {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        let dev = (u32::from_str_radix(major, 16).ok()?, u32::from_str_radix(minor, 16).ok()?);

        let (path, deleted) = if pathname.starts_with('/') {
            match pathname.strip_suffix(" (deleted)") {
                Some(p) => (Some(PathBuf::from(p)), true),
                None => (Some(PathBuf::from(&pathname)), false),
            }
        } else {
            (None, false)
        };
        Some(MapRegion {
            start,
            end,
            offset,
            readable: perms[0] == b'r',
            writable: perms[1] == b'w',
            executable: perms[2] == b'x',
            private: perms[3] == b'p',
            dev,
            inode,
            path,
            pathname,
            deleted,
        })
    }
}

/// Parse the full text of a maps file, skipping malformed lines.
pub fn parse_maps(text: &str) -> Vec<MapRegion> {
    text.lines().filter_map(MapRegion::parse_line).collect()
}

/// Memory map of a process, in address order.
pub fn read_maps(pid: i32) -> Result<Vec<MapRegion>> {
    check_pid(pid)?;
    let file = format!("/proc/{pid}/maps");
    let bytes = std::fs::read(&file).map_err(|e| proc_io_error(pid, format!("reading {file}"), e))?;
    // Paths are bytes on Linux; lossy conversion only affects exotic names.
    let text = String::from_utf8_lossy(&bytes);
    let maps = parse_maps(&text);
    // A zombie or exiting process has an empty maps file.
    if maps.is_empty() && !crate::threads::process_exists(pid) {
        return Err(Error::ProcessExited { pid });
    }
    Ok(maps)
}

/// The region containing `addr`, if any.
pub fn find_region(maps: &[MapRegion], addr: u64) -> Option<&MapRegion> {
    maps.iter().find(|r| r.contains(addr))
}

/// All regions backed by the file `path`.
pub fn regions_for_path<'a>(maps: &'a [MapRegion], path: &'a Path) -> impl Iterator<Item = &'a MapRegion> + 'a {
    maps.iter().filter(move |r| r.path.as_deref() == Some(path))
}

/// All regions whose backing file's name is `file_name` (e.g. `libc.so.6`).
pub fn regions_for_file_name<'a>(maps: &'a [MapRegion], file_name: &'a str) -> impl Iterator<Item = &'a MapRegion> + 'a {
    maps.iter().filter(move |r| r.path.as_deref().and_then(Path::file_name).is_some_and(|n| n == file_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c5a00000-55d0c5a02000 r--p 00000000 fd:01 1234567                    /usr/bin/cat
55d0c5a02000-55d0c5a07000 r-xp 00002000 fd:01 1234567                    /usr/bin/cat
55d0c6b8e000-55d0c6baf000 rw-p 00000000 00:00 0                          [heap]
7f1e2c000000-7f1e2c021000 rw-s 00000000 00:05 99                         /dev/shm/my file (deleted)
7f1e2d000000-7f1e2d001000 ---p 00000000 00:00 0 
garbage line
7ffd1a3c1000-7ffd1a3e2000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn parses_sample() {
        let m = parse_maps(SAMPLE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].start, 0x55d0c5a00000);
        assert_eq!(m[0].end, 0x55d0c5a02000);
        assert!(m[0].readable && !m[0].writable && !m[0].executable && m[0].private);
        assert_eq!(m[0].dev, (0xfd, 1));
        assert_eq!(m[0].inode, 1234567);
        assert_eq!(m[0].path.as_deref(), Some(Path::new("/usr/bin/cat")));
        assert_eq!(m[1].offset, 0x2000);
        assert!(m[1].executable);
        assert_eq!(m[2].path, None);
        assert_eq!(m[2].pathname, "[heap]");
        assert_eq!(m[3].path.as_deref(), Some(Path::new("/dev/shm/my file")));
        assert!(m[3].deleted && !m[3].private);
        assert_eq!(m[4].path, None);
        assert!(!m[4].readable);
        assert_eq!(m[5].pathname, "[stack]");
        assert_eq!(regions_for_file_name(&m, "cat").count(), 2);
        assert_eq!(regions_for_path(&m, Path::new("/usr/bin/cat")).count(), 2);
        assert_eq!(find_region(&m, 0x55d0c5a02001).map(|r| r.offset), Some(0x2000));
        assert!(find_region(&m, 1).is_none());
    }

    #[test]
    fn rejects_malformed() {
        for l in ["", "zz-10 r--p 0 00:00 0", "10-0 r--p 0 00:00 0", "0-10 r- 0 00:00 0", "0-10 r--p 0 0000 0"] {
            assert_eq!(MapRegion::parse_line(l), None, "{l:?}");
        }
    }

    #[test]
    fn own_maps() {
        let m = read_maps(std::process::id() as i32).unwrap();
        let here = own_maps as fn() as usize as u64;
        assert!(find_region(&m, here).is_some_and(|r| r.executable));
        assert!(matches!(read_maps(0), Err(Error::NoSuchProcess { .. })));
        assert!(matches!(read_maps(i32::MAX), Err(Error::NoSuchProcess { .. })));
    }
}
