//! Authenticated snapshots. Restoring a snapshot runs code (like unpickling); with a key
//! (`PYTELEPORT_KEY_FILE`, or `--key-file`, which sets it for the command and the
//! processes it starts), every snapshot written carries an HMAC-SHA256 tag over its header
//! and body, and every snapshot read must carry a tag that verifies under that key, checked
//! before anything of it is decoded. Without a key, tags are neither written nor checked.
//!
//! The tag is a trailer after the body: [`TAG_MAGIC`] then the 32-byte tag.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::FormatError;

pub const TAG_MAGIC: &[u8; 8] = b"PTAUTH01";
pub const TRAILER_LEN: usize = 8 + 32;

/// The environment variable naming the key file.
pub const KEY_FILE_VAR: &str = "PYTELEPORT_KEY_FILE";

/// The configured key, if any. A key file that is named but unusable is an error: a
/// snapshot must not silently go unauthenticated.
pub fn configured_key() -> Result<Option<Vec<u8>>, FormatError> {
    let Some(path) = std::env::var_os(KEY_FILE_VAR).filter(|p| !p.is_empty()) else { return Ok(None) };
    let key =
        std::fs::read(&path).map_err(|e| FormatError::Key(format!("cannot read the key file {}: {e}", std::path::Path::new(&path).display())))?;
    if key.len() < 16 {
        return Err(FormatError::Key(format!(
            "the key file {} holds {} bytes; a key needs at least 16",
            std::path::Path::new(&path).display(),
            key.len()
        )));
    }
    Ok(Some(key))
}

fn mac(key: &[u8], signed: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(signed);
    m
}

/// The trailer for `signed` (header and body) under `key`.
pub fn trailer(key: &[u8], signed: &[u8]) -> Vec<u8> {
    let mut out = TAG_MAGIC.to_vec();
    out.extend_from_slice(&mac(key, signed).finalize().into_bytes());
    out
}

/// Split `data` into what is signed and its tag, given where the body ends.
pub fn split(data: &[u8], body_end: usize) -> (&[u8], Option<&[u8]>) {
    if data.len() == body_end.saturating_add(TRAILER_LEN) && data[body_end..].starts_with(TAG_MAGIC) {
        (&data[..body_end], Some(&data[body_end + TAG_MAGIC.len()..]))
    } else {
        (data, None)
    }
}

/// Check `tag` over `signed` under the configured key (nothing to check without one).
pub fn verify(signed: &[u8], tag: Option<&[u8]>) -> Result<(), FormatError> {
    let Some(key) = configured_key()? else { return Ok(()) };
    let tag = tag.ok_or(FormatError::Unauthenticated)?;
    // Constant time.
    mac(&key, signed).verify_slice(tag).map_err(|_| FormatError::BadTag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_splits_off_and_only_its_own_key_verifies_it() {
        let signed = b"header and body";
        let mut data = signed.to_vec();
        data.extend(trailer(b"0123456789abcdef", signed));
        let (s, t) = split(&data, signed.len());
        assert_eq!(s, signed);
        assert!(mac(b"0123456789abcdef", s).verify_slice(t.unwrap()).is_ok());
        assert!(mac(b"another key 12345", s).verify_slice(t.unwrap()).is_err());
        assert_eq!(split(signed, signed.len()).1, None);
    }
}
