//! Any bytes: `Snapshot::from_bytes` must refuse them with an error or accept a snapshot
//! that is safe to walk (`pyteleport inspect`), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyteleport::snapshot::Snapshot;

fuzz_target!(
    init: {
        // The samples the other target edits must be valid as they are.
        for s in pyteleport_fuzz::samples() {
            let snap = Snapshot::from_bytes(&s.to_bytes().unwrap()).expect("a sample snapshot is refused");
            pyteleport_fuzz::exercise(&snap);
        }
    },
    |data: &[u8]| {
        if let Some(snap) = pyteleport_fuzz::from_bytes(data) {
            pyteleport_fuzz::exercise(&snap);
        }
    }
);
