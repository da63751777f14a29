//! A process's open file descriptors as `/proc/PID/fd` and `/proc/PID/fdinfo` show
//! them: what each refers to, its offset and its open flags. Read while the process is
//! stopped, this is the file side of a consistent snapshot.

use std::collections::HashMap;

use crate::error::{check_pid, proc_io_error, Result};

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFile {
    /// What `/proc/PID/fd/N` links to: an absolute path for files (with " (deleted)"
    /// appended once unlinked), or e.g. `pipe:[1234]`.
    pub target: String,
    /// The file offset (shared by every descriptor of the same open file).
    pub pos: u64,
    /// `open(2)` flags (O_ACCMODE, O_APPEND, ...).
    pub flags: u32,
}

impl OpenFile {
    /// A regular path one can open again (not a pipe, socket or deleted file).
    pub fn reopenable_path(&self) -> Option<&str> {
        (self.target.starts_with('/') && !self.target.ends_with(" (deleted)")).then_some(self.target.as_str())
    }
}

/// Every open descriptor of `pid`. Descriptors closed while listing are left out.
pub fn open_files(pid: i32) -> Result<HashMap<i32, OpenFile>> {
    check_pid(pid)?;
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| proc_io_error(pid, format!("listing {dir}"), e))?;
    let mut out = HashMap::new();
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else { continue };
        let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        let pos = field("pos:").and_then(|v| v.parse().ok()).unwrap_or(0);
        let flags = field("flags:").and_then(|v| u32::from_str_radix(v, 8).ok()).unwrap_or(0);
        out.insert(fd, OpenFile { target: target.to_string_lossy().into_owned(), pos, flags });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::io::AsRawFd;

    #[test]
    fn sees_offset_flags_and_path_of_our_own_file() {
        let path = std::env::temp_dir().join(format!("ptrace-files-test-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        f.write_all(b"hello world").unwrap();
        f.seek(SeekFrom::Start(5)).unwrap();
        let files = open_files(std::process::id() as i32).unwrap();
        let entry = &files[&f.as_raw_fd()];
        assert_eq!(entry.reopenable_path(), Some(path.to_str().unwrap()));
        assert_eq!(entry.pos, 5);
        assert_ne!(entry.flags & libc::O_APPEND as u32, 0);
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
}
