//! Interpreter structure layouts, one table per CPython version, kept as data.
//!
//! The tables are generated from each interpreter's debug info by
//! `scripts/gen_layouts.py`; the reader has one code path that looks offsets up here.
//! On 3.13+ the interpreter carries `_Py_DebugOffsets` describing itself: we check our
//! table against it before reading anything, so a patch release that moved a field is
//! refused by name instead of being misread.

// Generated files (scripts/gen_layouts.py): kept exactly as the generator writes them.
#[rustfmt::skip]
mod fields;
#[rustfmt::skip]
mod v3_11;
#[rustfmt::skip]
mod v3_12;
#[rustfmt::skip]
mod v3_13;
#[rustfmt::skip]
mod v3_14;
#[rustfmt::skip]
mod v3_15;

pub use fields::Layout;

/// `tp_flags` bits pyteleport tests (the same in every supported version).
pub mod tpflags {
    pub const TPFLAGS_HEAPTYPE: u64 = 1 << 9;
    pub const TPFLAGS_IMMUTABLETYPE: u64 = 1 << 8;

    pub const TPFLAGS_LONG_SUBCLASS: u64 = 1 << 24;
    pub const TPFLAGS_LIST_SUBCLASS: u64 = 1 << 25;
    pub const TPFLAGS_TUPLE_SUBCLASS: u64 = 1 << 26;
    pub const TPFLAGS_BYTES_SUBCLASS: u64 = 1 << 27;
    pub const TPFLAGS_UNICODE_SUBCLASS: u64 = 1 << 28;
    pub const TPFLAGS_DICT_SUBCLASS: u64 = 1 << 29;
    pub const TPFLAGS_BASE_EXC_SUBCLASS: u64 = 1 << 30;
    pub const TPFLAGS_TYPE_SUBCLASS: u64 = 1 << 31;
    pub const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
}

/// (bit position, bit width) of the fields of `PyASCIIObject.state`.
#[derive(Debug, Clone, Copy)]
pub struct UnicodeStateBits {
    pub interned: (u32, u32),
    pub kind: (u32, u32),
    pub compact: (u32, u32),
    pub ascii: (u32, u32),
}

/// Every table we ship.
pub const ALL: &[&Layout] = &[&v3_11::LAYOUT, &v3_12::LAYOUT, &v3_13::LAYOUT, &v3_14::LAYOUT, &v3_15::LAYOUT];

/// The table for a running interpreter: same minor version; patch releases of 3.11 and
/// 3.12 keep these layouts (no debug offsets exist to check them), 3.13+ are checked
/// against `_Py_DebugOffsets` by the caller.
pub fn for_version(major: u8, minor: u8) -> Option<&'static Layout> {
    ALL.iter().copied().find(|l| l.version.0 == major && l.version.1 == minor)
}

pub fn supported_versions() -> String {
    ALL.iter().map(|l| format!("{}.{}", l.version.0, l.version.1)).collect::<Vec<_>>().join(", ")
}

/// The versions teleport, attach and restore support (the others can only be dumped).
pub fn movable_versions() -> String {
    ALL.iter().filter(|l| l.movable).map(|l| format!("{}.{}", l.version.0, l.version.1)).collect::<Vec<_>>().join(", ")
}

impl Layout {
    /// Whether `_Py_DebugOffsets` (raw bytes, as for [`Self::check_debug_offsets`]) says
    /// the interpreter is a free-threaded build; a table too short to say counts as one.
    pub fn free_threaded(&self, table: &[u8]) -> bool {
        match self.debug_offsets_free_threaded {
            Some(at) => table.get(at..at + 8).is_none_or(|flag| flag.iter().any(|&b| b != 0)),
            None => false,
        }
    }

    /// Compare with the interpreter's own `_Py_DebugOffsets` (the raw bytes at the start
    /// of `_PyRuntime`). Returns the first field whose offset disagrees.
    pub fn check_debug_offsets(&self, table: &[u8]) -> Result<(), LayoutMismatch> {
        for &(field, position, ours) in self.debug_offsets {
            let Some(raw) = table.get(position..position + 8) else {
                return Err(LayoutMismatch { field, ours, theirs: None });
            };
            let theirs = u64::from_le_bytes(raw.try_into().unwrap_or([0; 8])) as usize;
            if theirs != ours {
                return Err(LayoutMismatch { field, ours, theirs: Some(theirs) });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct LayoutMismatch {
    pub field: &'static str,
    pub ours: usize,
    pub theirs: Option<usize>,
}

impl std::fmt::Display for LayoutMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.theirs {
            Some(t) => write!(f, "field `{}` is at offset {} in this interpreter, {} in pyteleport's table", self.field, t, self.ours),
            None => write!(f, "field `{}` is missing from the interpreter's _Py_DebugOffsets", self.field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_the_core_fields() {
        for l in ALL {
            // exactly one way to reach the current frame and the instruction
            assert!(l.tstate_current_frame.is_some() ^ l.tstate_cframe.is_some(), "{:?}", l.version);
            assert_eq!(l.tstate_cframe.is_some(), l.cframe_current_frame.is_some());
            assert!(l.frame_instr_ptr.is_some() ^ l.frame_prev_instr.is_some());
            // one way to make the eval loop run its pending-work check
            assert!(l.tstate_eval_breaker.is_some() || (l.runtime_signals_pending.is_some() && l.interp_eval_breaker.is_some()));
            // one way to find a split values array's order, and the 3.12 tag only there
            assert_eq!(l.dictvalues_capacity.is_some(), l.dictvalues_size.is_some());
            assert!(!(l.managed_dict_tags_values && l.managed_values_offset.is_some()));
        }
    }

    #[test]
    fn stack_tops_and_stackrefs_go_together() {
        for l in ALL {
            // one way to find a frame's saved stack top: an int slot index or a pointer
            assert!(l.frame_stacktop.is_some() ^ l.frame_stackpointer.is_some(), "{:?}", l.version);
            // _PyStackRef came with the stack pointer (3.14); such frames are not rebuilt yet
            assert_eq!(l.stackrefs, l.frame_stackpointer.is_some(), "{:?}", l.version);
            assert!(!(l.movable && l.stackrefs), "{:?}", l.version);
            // every version with _Py_DebugOffsets says where its free-threaded flag is
            assert_eq!(l.debug_offsets_size.is_some(), l.debug_offsets_free_threaded.is_some(), "{:?}", l.version);
            assert!(l.frame_stackpointer.is_none() || l.debug_offsets.iter().any(|e| e.0 == "frame_stackpointer"));
        }
        assert_eq!(movable_versions(), "3.11, 3.12, 3.13");
    }

    #[test]
    fn free_threaded_builds_are_recognised() {
        for minor in [13, 14, 15] {
            let l = for_version(3, minor).unwrap();
            let mut table = vec![0u8; l.debug_offsets_size.unwrap()];
            assert!(!l.free_threaded(&table));
            table[l.debug_offsets_free_threaded.unwrap()] = 1;
            assert!(l.free_threaded(&table));
            assert!(l.free_threaded(&table[..8]), "a cut table is not taken as a GIL build");
        }
        assert!(!for_version(3, 12).unwrap().free_threaded(&[]));
    }

    #[test]
    fn debug_offsets_mismatch_names_the_field() {
        let l = for_version(3, 13).unwrap();
        let mut table = vec![0u8; l.debug_offsets_size.expect("3.13 has _Py_DebugOffsets")];
        for &(_, pos, ours) in l.debug_offsets {
            table[pos..pos + 8].copy_from_slice(&(ours as u64).to_le_bytes());
        }
        assert!(l.check_debug_offsets(&table).is_ok());
        let (field, pos, ours) = l.debug_offsets[3];
        table[pos..pos + 8].copy_from_slice(&((ours + 8) as u64).to_le_bytes());
        let err = l.check_debug_offsets(&table).unwrap_err();
        assert_eq!(err.field, field);
        assert!(err.to_string().contains(field));
    }
}
