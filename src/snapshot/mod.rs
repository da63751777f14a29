//! The snapshot file: a fixed header that is checked before anything is decoded, then a
//! serde + bincode body. The format is specified in docs/snapshot-format.md.

use crate::error::Result;

pub mod auth;
pub mod files;
pub mod model;
pub mod reducers;
pub mod report;
pub mod validate;

pub use crate::error::{FormatError, Invalid};
pub use model::*;
pub use validate::validate;

pub const MAGIC: &[u8; 8] = b"PYTELEPT";
pub const FORMAT_VERSION: u32 = 7;
/// magic 8 + format 4 + python 4 + bytecode magic 4 + body length 8 + crc32 4.
pub const HEADER_LEN: usize = 32;

impl Snapshot {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Encoded in place after the header (a 100 MB state is not copied again), into a
        // buffer sized for the bulk of it: the byte and text payloads.
        let payload: usize = self
            .graph
            .objects
            .iter()
            .map(|o| match &o.value {
                Value::Bytes(b) | Value::ByteArray(b) => b.len(),
                Value::Str(s) => s.as_text().len(),
                _ => 32,
            })
            .sum();
        let mut out = Vec::with_capacity(HEADER_LEN + payload + payload / 16 + 4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[self.python.major, self.python.minor, self.python.micro, 0]);
        out.extend_from_slice(&self.bytecode_magic);
        out.extend_from_slice(&[0; 12]); // body length and checksum, filled below
        bincode::serde::encode_into_std_write(self, &mut out, bincode::config::standard()).map_err(|e| FormatError::Encode(e.to_string()))?;
        let body_len = (out.len() - HEADER_LEN) as u64;
        let crc = crc32fast::hash(&out[HEADER_LEN..]);
        out[HEADER_LEN - 12..HEADER_LEN - 4].copy_from_slice(&body_len.to_le_bytes());
        out[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        if let Some(key) = auth::configured_key()? {
            let tag = auth::trailer(&key, &out);
            out.extend_from_slice(&tag);
        }
        Ok(out)
    }

    /// Check the header, the authentication tag (under a key), the length and the
    /// checksum, decode, then validate the graph.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let header = Header::parse(data)?;
        let body_end = usize::try_from(header.body_len).ok().and_then(|n| n.checked_add(HEADER_LEN)).unwrap_or(usize::MAX);
        let (signed, tag) = auth::split(data, body_end);
        auth::verify(signed, tag)?;
        let body = &signed[HEADER_LEN..];
        // Refused rather than aborted by an allocation failure half-way (an address-space
        // limit, `ulimit -v`): decoding holds about the body again.
        let need = (body.len() as u64).saturating_mul(3) / 2 + (64 << 20);
        if let Some(left) = address_space_left() {
            if need > left {
                return Err(FormatError::NotEnoughMemory { need, left }.into());
            }
        }
        if (body.len() as u64) != header.body_len {
            return Err(FormatError::Length { actual: body.len() as u64, declared: header.body_len }.into());
        }
        if crc32fast::hash(body) != header.crc32 {
            return Err(FormatError::Checksum.into());
        }
        let (mut snap, used) = decode_body(body)?;
        if used != body.len() {
            return Err(FormatError::Trailing.into());
        }
        validate(&snap).map_err(FormatError::Invalid)?;
        snap.graph.rebuild_index();
        Ok(snap)
    }

    pub fn write_atomically(&self, path: &std::path::Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomically(path, &bytes)
    }
}

/// What the address-space limit (RLIMIT_AS) leaves this process, if there is one.
fn address_space_left() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit, a live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used_kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmSize:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(limit.rlim_cur.saturating_sub(used_kb * 1024))
}

/// Decode a body whose allocations are bounded by its own length: a crafted length
/// prefix (a string "of" 2^57 bytes) must be refused, not allocated. bincode charges every
/// allocation at its in-memory size, which is larger than the encoded one (an object of a
/// few encoded bytes is a ~100-byte node), so the budget is a generous multiple of the
/// body, rounded up to one of a few tiers (the limit is a type parameter).
fn decode_body(body: &[u8]) -> std::result::Result<(Snapshot, usize), FormatError> {
    fn with_limit<const LIMIT: usize>(body: &[u8]) -> std::result::Result<(Snapshot, usize), FormatError> {
        bincode::serde::decode_from_slice(body, bincode::config::standard().with_limit::<LIMIT>()).map_err(|e| match e {
            bincode::error::DecodeError::LimitExceeded => {
                FormatError::Decode(format!("it declares more data than a {}-byte body can hold", body.len()))
            }
            e => FormatError::Decode(e.to_string()),
        })
    }
    let budget = (body.len() as u64).saturating_mul(ALLOCATION_PER_BODY_BYTE).saturating_add(64 << 20);
    match budget {
        b if b <= 1 << 28 => with_limit::<{ 1 << 28 }>(body),
        b if b <= 1 << 32 => with_limit::<{ 1 << 32 }>(body),
        b if b <= 1 << 36 => with_limit::<{ 1 << 36 }>(body),
        _ => with_limit::<{ 1 << 40 }>(body),
    }
}

/// In-memory bytes a snapshot may need per encoded byte (measured: ~10 for a graph of
/// small objects; 64 leaves room).
const ALLOCATION_PER_BODY_BYTE: u64 = 64;

/// Write `bytes` to `path` (`-`: standard output), atomically and privately: see `files`.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    Ok(files::write_atomically(path, bytes)?)
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
    pub fn parse(data: &[u8]) -> std::result::Result<Header, FormatError> {
        if data.len() < HEADER_LEN {
            return Err(FormatError::TooShort(data.len()));
        }
        if &data[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let u32_at = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let format_version = u32_at(8);
        if format_version != FORMAT_VERSION {
            return Err(FormatError::Version { found: format_version, expected: FORMAT_VERSION });
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
    use crate::process::PyVersion;

    fn sample() -> Snapshot {
        Snapshot {
            python: PyVersion { major: 3, minor: 12, micro: 1, level: 0xf, serial: 0 },
            bytecode_magic: [0xcb, 0x0d, 0x0d, 0x0a],
            process: ProcessInfo {
                pid: 1,
                executable: "/usr/bin/python3".into(),
                argv: vec!["x.py".into()],
                sys_path: vec![],
                cwd: "/".into(),
                recursion_limit: 1000,
                stdin_pending: vec![],
            },
            graph: ObjectGraph::default(),
            thread: ThreadInfo {
                tstate: 0,
                thread_id: 1,
                native_thread_id: 1,
                name: None,
                is_main: true,
                frames: vec![],
                handled_exception: None,
                thread_object: None,
                held_rlocks: vec![],
            },
            main_module: None,
            redirected_streams: vec![],
            interpreter_extras: vec![],
            other_threads: vec![],
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

    #[test]
    fn valid_checksum_with_bad_ids_is_refused() {
        let mut snap = sample();
        snap.graph.objects.push(Object { addr: 16, type_id: Some(7), value: Value::List(vec![0]) });
        let err = Snapshot::from_bytes(&snap.to_bytes().unwrap()).unwrap_err().to_string();
        assert!(err.contains("the type of object 0 refers to object 7"), "{err}");

        let mut snap = sample();
        snap.graph.objects.push(Object { addr: 16, type_id: None, value: Value::Tuple(vec![0, 3]) });
        let err = Snapshot::from_bytes(&snap.to_bytes().unwrap()).unwrap_err().to_string();
        assert!(err.contains("object 0 refers to object 3") && err.contains("only 1 objects"), "{err}");

        let mut snap = sample();
        snap.main_module = Some(0);
        assert!(Snapshot::from_bytes(&snap.to_bytes().unwrap()).unwrap_err().to_string().contains("__main__"));
    }

    #[test]
    fn deeply_nested_instance_values_are_refused_not_overflowing_the_stack() {
        // Built and encoded where the stack is large (encoding recurses too); decoded on
        // an ordinary test thread, where 10,000 levels would overflow it.
        let bytes = std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn(|| {
                let mut value = Value::Int { negative: false, digits: vec![1] };
                for _ in 0..10_000 {
                    value = Value::Instance { dict: None, slots: vec![], base: Some(Box::new(value)) };
                }
                let mut snap = sample();
                snap.graph.objects.push(Object { addr: 16, type_id: None, value });
                snap.to_bytes().unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        let err = Snapshot::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("nest deeper"), "{err}");
    }

    #[test]
    fn a_declared_length_beyond_the_body_is_refused_not_allocated() {
        // A str node whose length prefix claims ~2^57 bytes, behind a correct header.
        let mut snap = sample();
        snap.graph.objects.push(Object { addr: 16, type_id: None, value: Value::Str(PyStr::Text("abcdefgh".into())) });
        let bytes = snap.to_bytes().unwrap();
        let at = bytes.windows(8).rposition(|w| w == b"abcdefgh").unwrap();
        let mut body = bytes[HEADER_LEN..].to_vec();
        let at = at - HEADER_LEN;
        // bincode varint: 0xfd then a u64 length; here it replaces the one-byte length 8.
        assert_eq!(body[at - 1], 8);
        body.splice(at - 1..at, [0xfd, 0, 0, 0, 0, 0, 0, 0, 2]);
        let mut crafted = bytes[..HEADER_LEN].to_vec();
        crafted[HEADER_LEN - 12..HEADER_LEN - 4].copy_from_slice(&(body.len() as u64).to_le_bytes());
        crafted[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        crafted.extend_from_slice(&body);
        let err = Snapshot::from_bytes(&crafted).unwrap_err().to_string();
        assert!(err.contains("declares more data"), "{err}");
    }

    #[test]
    fn frames_and_plans_must_match() {
        let mut snap = sample();
        snap.resume.push(FrameResume { resume: 0, keep: 0, for_iter: None, exc_value: None, init_self: None, push: false });
        let err = Snapshot::from_bytes(&snap.to_bytes().unwrap()).unwrap_err().to_string();
        assert!(err.contains("0 frames but 1 resume plans"), "{err}");
    }
}
