//! Where snapshot files go: checkpoints, `--to-file`, dumps, and the private temporary
//! copies a migration hands to the new process.
//!
//! pyteleport often runs as root (ptrace), and a snapshot is code the restore engine
//! runs: so a snapshot is never written through a name someone else controls. The
//! destination is checked before anything is captured (a symlink, device, FIFO or
//! directory there is refused, and so is a directory other users may write to unless it
//! is sticky and ours or root's); the bytes go to a temporary file opened with
//! O_CREAT|O_EXCL|O_NOFOLLOW under a random name beside it, mode 0600, fsynced, renamed
//! over the destination, and the directory fsynced. `-` is standard output.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{AccessFlags, UnlinkatFlags};

pub use crate::error::FileError;

/// The path that means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A destination that passed the checks: its directory, held open so that the write
/// happens in the directory that was checked.
struct Destination {
    dir: File,
    name: OsString,
}

/// Refuse a destination a snapshot must not be written to (see the module comment),
/// before anything is captured. Nothing is created.
pub fn check_destination(path: &Path) -> Result<(), FileError> {
    if is_stdout(path) {
        return check_stdout();
    }
    open_destination(path).map(|_| ())
}

fn check_stdout() -> Result<(), FileError> {
    // SAFETY: isatty only queries descriptor 1.
    if unsafe { libc::isatty(1) } == 1 {
        return Err(FileError::StdoutIsTerminal);
    }
    Ok(())
}

fn kind_of(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFLNK => "symbolic link",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        _ => "special file",
    }
}

fn open_destination(path: &Path) -> Result<Destination, FileError> {
    let bad_dir = |dir: &Path, why: String| FileError::BadDirectory { path: path.to_path_buf(), dir: dir.to_path_buf(), why };
    // What is at the name itself, not what a symlink there points to.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(meta) => return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(meta.mode()) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::Write { path: path.to_path_buf(), what: "cannot examine it", source: e }),
    }
    let name = path.file_name().map(|n| n.to_os_string()).ok_or_else(|| FileError::NotRegular { path: path.to_path_buf(), kind: "directory" })?;
    let dir_path = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let dir = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(&dir_path).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => "does not exist".to_string(),
            Some(libc::ENOTDIR) => "is not a directory".to_string(),
            _ => format!("cannot be opened ({e})"),
        };
        bad_dir(&dir_path, why)
    })?;
    let meta = dir.metadata().map_err(|e| bad_dir(&dir_path, format!("cannot be examined ({e})")))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let sticky = meta.mode() & libc::S_ISVTX != 0;
    if meta.mode() & 0o002 != 0 && !(sticky && (meta.uid() == me || meta.uid() == 0)) {
        return Err(FileError::SharedDirectory { path: path.to_path_buf(), dir: dir_path });
    }
    // A read-only mount is refused now, not after a capture (root passes mode checks,
    // not this one).
    if let Err(e) = nix::unistd::faccessat(Some(dir.as_raw_fd()), ".", AccessFlags::W_OK, AtFlags::AT_EACCESS) {
        return Err(bad_dir(&dir_path, format!("is not writable ({})", std::io::Error::from(e))));
    }
    Ok(Destination { dir, name })
}

/// 16 random hex digits (getrandom, else /dev/urandom): temporary names nobody can
/// guess and pre-create.
pub(crate) fn random_suffix() -> String {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let got = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if got != buf.len() as isize {
        let read = File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
        if read.is_err() {
            // Still unique enough for O_EXCL to retry on; only unpredictability is lost.
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            buf = ((nanos as u64) ^ ((std::process::id() as u64) << 40)).to_le_bytes();
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `bytes` to `path` atomically (see the module comment), or to standard output
/// for `-`. On failure whatever was at `path` is left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if is_stdout(path) {
        check_stdout()?;
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|()| out.flush()).map_err(|source| FileError::Stdout { source });
    }
    let dest = open_destination(path)?;
    let fail = |what: &'static str| move |source: std::io::Error| FileError::Write { path: path.to_path_buf(), what, source };
    let dirfd = Some(dest.dir.as_raw_fd());
    let mut tmp_name = OsString::new();
    let mut file = None;
    for _ in 0..100 {
        let mut candidate = OsString::from(".");
        candidate.push(&dest.name);
        candidate.push(format!(".{}.tmp", random_suffix()));
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(dirfd, candidate.as_os_str(), flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => {
                // SAFETY: a descriptor openat just returned, owned by nothing else.
                file = Some(unsafe { File::from_raw_fd(fd) });
                tmp_name = candidate;
                break;
            }
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => return Err(fail("cannot create a temporary file beside it")(e.into())),
        }
    }
    let Some(mut file) = file else {
        return Err(fail("cannot create a temporary file beside it")(std::io::Error::from_raw_os_error(libc::EEXIST)));
    };
    let remove_tmp = || {
        let _ = nix::unistd::unlinkat(dirfd, tmp_name.as_os_str(), UnlinkatFlags::NoRemoveDir);
    };
    let written = file.write_all(bytes).map_err(fail("cannot write it")).and_then(|()| file.sync_all().map_err(fail("cannot sync it")));
    drop(file);
    if let Err(e) = written {
        remove_tmp();
        return Err(e);
    }
    // Checked again at the last moment: something planted at the name since is refused too.
    match nix::sys::stat::fstatat(dirfd, dest.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => {
            remove_tmp();
            return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(st.st_mode) });
        }
        _ => {}
    }
    if let Err(e) = nix::fcntl::renameat(dirfd, tmp_name.as_os_str(), dirfd, dest.name.as_os_str()) {
        remove_tmp();
        return Err(fail("cannot rename the temporary file onto it")(e.into()));
    }
    dest.dir.sync_all().map_err(|source| FileError::Write { path: path.to_path_buf(), what: "cannot sync its directory", source })?;
    Ok(())
}

/// A directory of our own (mode 0700, under $TMPDIR or /tmp) for temporary snapshots;
/// removed with everything in it when dropped.
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    pub fn create() -> Result<PrivateDir, FileError> {
        let base = std::env::temp_dir();
        let mut last = std::io::Error::from_raw_os_error(libc::EEXIST);
        for _ in 0..100 {
            let path = base.join(format!("pyteleport-{}", random_suffix()));
            // mkdir does not follow a symlink planted at the name: it fails with EEXIST.
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(FileError::TempDir { dir: base, source: e }),
            }
        }
        Err(FileError::TempDir { dir: base, source: last })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new file `name` in this directory holding `bytes`, mode 0600.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, FileError> {
        let path = self.path.join(name);
        let fail = |what: &'static str| {
            let path = path.clone();
            move |source: std::io::Error| FileError::Write { path, what, source }
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(fail("cannot create it"))?;
        f.write_all(bytes).map_err(fail("cannot write it"))?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A name for error messages: the path as given, `-` as "standard output".
pub fn describe(path: &Path) -> String {
    if is_stdout(path) {
        "standard output".into()
    } else {
        String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PrivateDir {
        let d = PrivateDir::create().unwrap();
        std::fs::create_dir(d.path().join(name)).unwrap();
        d
    }

    #[test]
    fn writes_a_private_file_and_replaces_a_regular_one() {
        let d = scratch("x");
        let p = d.path().join("x").join("a.snap");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // No temporary left beside it.
        assert_eq!(std::fs::read_dir(d.path().join("x")).unwrap().count(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_and_leaves_it() {
        let d = scratch("x");
        let target = d.path().join("x").join("mine");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.path().join("x").join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomically(&link, b"evil").unwrap_err().to_string();
        assert!(err.contains("symbolic link") && err.contains("link"), "{err}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let err = write_atomically(&d.path().join("x"), b"evil").unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
        let err = check_destination(Path::new("/dev/null")).unwrap_err().to_string();
        assert!(err.contains("character device"), "{err}");
    }

    #[test]
    fn refuses_a_missing_or_shared_directory() {
        let d = scratch("x");
        let err = check_destination(&d.path().join("nope").join("a.snap")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let shared = d.path().join("x");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_destination(&shared.join("a.snap")).unwrap_err().to_string();
        assert!(err.contains("writable by other users"), "{err}");
        // Sticky and ours (like /tmp, which is root's): fine.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_destination(&shared.join("a.snap")).unwrap();
    }

    #[test]
    fn a_private_dir_goes_away_with_its_files() {
        let d = PrivateDir::create().unwrap();
        assert_eq!(std::fs::metadata(d.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let f = d.write("s.snap", b"abc").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        let path = d.path().to_path_buf();
        drop(d);
        assert!(!path.exists());
        assert_ne!(random_suffix(), random_suffix());
    }
}
