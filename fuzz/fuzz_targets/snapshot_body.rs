//! Snapshot bodies behind a correct header (length and CRC-32 fixed up), so every input
//! reaches bincode decoding and `validate`. The first byte chooses the form of the rest
//! (`pyteleport_fuzz::body_from_input`):
//! * even: an edit script applied to the body of one of the valid sample snapshots
//!   built in `pyteleport_fuzz`: small corruptions of a valid body, without a corpus;
//! * odd: the body itself.
//!
//! Whatever is accepted must survive `pyteleport_fuzz::exercise` (the walk `pyteleport
//! inspect` does, and encoding it again).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = pyteleport_fuzz::body_from_input(data);
    if let Some(snap) = pyteleport_fuzz::from_bytes(&pyteleport_fuzz::with_header(&body)) {
        pyteleport_fuzz::exercise(&snap);
    }
});
