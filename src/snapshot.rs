//! The snapshot file: a fixed header that is checked before anything is decoded, then a
//! serde + bincode body. The format is specified in docs/snapshot-format.md.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objects::{ObjId, ObjectGraph};
use crate::process::PyVersion;
use crate::threads::ThreadInfo;

pub const MAGIC: &[u8; 8] = b"PYTELEPT";
pub const FORMAT_VERSION: u32 = 4;
/// magic 8 + format 4 + python 4 + bytecode magic 4 + body length 8 + crc32 4.
pub const HEADER_LEN: usize = 32;

/// What the new process needs besides the frames and objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub executable: String,
    pub argv: Vec<String>,
    pub sys_path: Vec<String>,
    pub cwd: String,
    /// `sys.getrecursionlimit()` of the original.
    pub recursion_limit: i32,
    /// Input `sys.stdin` had read ahead but not handed to the program.
    #[serde(with = "serde_bytes")]
    pub stdin_pending: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub python: PyVersion,
    pub bytecode_magic: [u8; 4],
    pub process: ProcessInfo,
    pub graph: ObjectGraph,
    /// The thread being moved; frames innermost first, pyteleport's own frames removed.
    pub thread: ThreadInfo,
    /// The `__main__` module node.
    pub main_module: Option<ObjId>,
    /// `sys.stdin`/`stdout`/`stderr` rebound to other objects (contextlib.redirect_stdout):
    /// (name, object), set again in the new process.
    pub redirected_streams: Vec<(String, ObjId)>,
    /// How each frame of `thread` resumes, innermost first.
    pub resume: Vec<crate::supervisor::FrameResume>,
}

impl Snapshot {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Encoded in place after the header (a 100 MB state is not copied again), into a
        // buffer sized for the bulk of it: the byte and text payloads.
        let payload: usize = self.graph.objects.iter().map(|o| match &o.value {
            crate::objects::Value::Bytes(b) | crate::objects::Value::ByteArray(b) => b.len(),
            crate::objects::Value::Str(s) => s.as_text().len(),
            _ => 32,
        }).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + payload + payload / 16 + 4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[self.python.major, self.python.minor, self.python.micro, 0]);
        out.extend_from_slice(&self.bytecode_magic);
        out.extend_from_slice(&[0; 12]); // body length and checksum, filled below
        bincode::serde::encode_into_std_write(self, &mut out, bincode::config::standard())
            .map_err(|e| Error::Snapshot(format!("cannot encode: {e}")))?;
        let body_len = (out.len() - HEADER_LEN) as u64;
        let crc = crc32fast::hash(&out[HEADER_LEN..]);
        out[HEADER_LEN - 12..HEADER_LEN - 4].copy_from_slice(&body_len.to_le_bytes());
        out[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Check the header, the length and the checksum, then decode.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let header = Header::parse(data)?;
        let body = &data[HEADER_LEN..];
        if (body.len() as u64) != header.body_len {
            return Err(Error::Snapshot(format!("truncated or padded: body is {} bytes, header says {}", body.len(), header.body_len)));
        }
        if crc32fast::hash(body) != header.crc32 {
            return Err(Error::Snapshot("checksum mismatch: the file is corrupt".into()));
        }
        let (mut snap, used): (Snapshot, usize) = bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| Error::Snapshot(format!("cannot decode body: {e}")))?;
        if used != body.len() {
            return Err(Error::Snapshot("trailing bytes after the body".into()));
        }
        snap.graph.rebuild_index();
        Ok(snap)
    }

    pub fn write_atomically(&self, path: &std::path::Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomically(path, &bytes)
    }
}

/// Write to a temporary file beside `path`, fsync, rename: a crash mid-write leaves the
/// previous file intact.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |context: String| move |source| Error::Io { context, source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot"), std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io(format!("cannot create {}", tmp.display())))?;
    f.write_all(bytes).map_err(io(format!("cannot write {}", tmp.display())))?;
    f.sync_all().map_err(io(format!("cannot sync {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot rename onto {}", path.display())))?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub format_version: u32,
    pub python: (u8, u8, u8),
    pub bytecode_magic: [u8; 4],
    pub body_len: u64,
    pub crc32: u32,
}

impl Header {
    pub fn parse(data: &[u8]) -> Result<Header> {
        if data.len() < HEADER_LEN {
            return Err(Error::Snapshot(format!("too short to be a snapshot ({} bytes)", data.len())));
        }
        if &data[..8] != MAGIC {
            return Err(Error::Snapshot("not a pyteleport snapshot (bad magic)".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let format_version = u32_at(8);
        if format_version != FORMAT_VERSION {
            return Err(Error::Snapshot(format!("snapshot format {format_version}, this pyteleport reads format {FORMAT_VERSION}")));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&data[20..28]);
        Ok(Header {
            format_version,
            python: (data[12], data[13], data[14]),
            bytecode_magic: [data[16], data[17], data[18], data[19]],
            body_len: u64::from_le_bytes(len),
            crc32: u32_at(28),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            python: PyVersion { major: 3, minor: 12, micro: 1, level: 0xf, serial: 0 },
            bytecode_magic: [0xcb, 0x0d, 0x0d, 0x0a],
            process: ProcessInfo { pid: 1, executable: "/usr/bin/python3".into(), argv: vec!["x.py".into()], sys_path: vec![], cwd: "/".into(), recursion_limit: 1000, stdin_pending: vec![] },
            graph: ObjectGraph::default(),
            thread: ThreadInfo { tstate: 0, thread_id: 1, native_thread_id: 1, name: None, is_main: true, frames: vec![], handled_exception: None },
            main_module: None,
            redirected_streams: vec![],
            resume: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = sample().to_bytes().unwrap();
        let back = Snapshot::from_bytes(&bytes).unwrap();
        assert_eq!(back.process.argv, vec!["x.py".to_string()]);
        assert_eq!(back.python.minor, 12);
    }

    #[test]
    fn corrupt_truncated_and_foreign_are_refused() {
        let bytes = sample().to_bytes().unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(Snapshot::from_bytes(&flipped).unwrap_err().to_string().contains("checksum"));
        assert!(Snapshot::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err().to_string().contains("truncated"));
        assert!(Snapshot::from_bytes(b"#!/bin/sh\necho hi\n and more bytes to pass length").unwrap_err().to_string().contains("magic"));
        let mut future = bytes.clone();
        future[8] = 99;
        assert!(Snapshot::from_bytes(&future).unwrap_err().to_string().contains("format 99"));
        assert!(Snapshot::from_bytes(&bytes[..10]).is_err());
    }
}
