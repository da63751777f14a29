//! `co_exceptiontable`: reading (lenient and strict) and writing, in code units.

use super::BytecodeError;

/// One entry of `co_exceptiontable`, in code units; `end` is exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionTableEntry {
    pub start: u32,
    pub end: u32,
    pub target: u32,
    pub depth: u32,
    pub lasti: bool,
}

impl ExceptionTableEntry {
    /// Stack depth on entry to the handler: `depth`, +1 for the saved
    /// `lasti` if `lasti`, +1 for the pushed exception.
    pub fn handler_depth(&self) -> u32 {
        self.depth.saturating_add(self.lasti as u32 + 1)
    }
}

/// Big-endian 6-bit varint (exception table flavour): 0x40 = continuation.
fn read_exc_varint(bytes: &[u8], pos: &mut usize) -> Result<Option<u32>, BytecodeError> {
    let start = *pos;
    let mut b = match bytes.get(*pos) {
        Some(&b) => b,
        None => return Ok(None),
    };
    *pos += 1;
    let mut val: u64 = (b & 63) as u64;
    while b & 64 != 0 {
        b = match bytes.get(*pos) {
            Some(&b) => b,
            None => return Ok(None),
        };
        *pos += 1;
        val = (val << 6) | (b & 63) as u64;
        if val > u32::MAX as u64 {
            return Err(BytecodeError::VarintOverflow { byte_offset: start });
        }
    }
    Ok(Some(val as u32))
}

fn parse_exc_core(bytes: &[u8], strict: bool) -> Result<Vec<ExceptionTableEntry>, BytecodeError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let entry_start = pos;
        let mut fields = [0u32; 4];
        for (k, f) in fields.iter_mut().enumerate() {
            match read_exc_varint(bytes, &mut pos)? {
                Some(v) => *f = v,
                None => {
                    if strict && !(k == 0 && entry_start == bytes.len()) {
                        return Err(BytecodeError::TruncatedExceptionTable { byte_offset: entry_start });
                    }
                    return Ok(out);
                }
            }
        }
        let [start, len, target, dl] = fields;
        let end = match start.checked_add(len) {
            Some(e) => e,
            None => return Err(BytecodeError::VarintOverflow { byte_offset: entry_start }),
        };
        out.push(ExceptionTableEntry { start, end, target, depth: dl >> 1, lasti: dl & 1 != 0 });
    }
}

/// Parse `co_exceptiontable` exactly like `dis._parse_exception_table`
/// (a trailing incomplete entry is ignored). On a varint overflow the entries
/// parsed so far are returned.
pub fn parse_exception_table(bytes: &[u8]) -> Vec<ExceptionTableEntry> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let mut fields = [0u32; 4];
        for f in fields.iter_mut() {
            match read_exc_varint(bytes, &mut pos) {
                Ok(Some(v)) => *f = v,
                _ => return out,
            }
        }
        let [start, len, target, dl] = fields;
        let Some(end) = start.checked_add(len) else { return out };
        out.push(ExceptionTableEntry { start, end, target, depth: dl >> 1, lasti: dl & 1 != 0 });
    }
}

/// Strict variant of [`parse_exception_table`]: a truncated entry or an
/// overflowing varint is an error.
pub fn try_parse_exception_table(bytes: &[u8]) -> Result<Vec<ExceptionTableEntry>, BytecodeError> {
    parse_exc_core(bytes, true)
}

/// The handler for an instruction at `offset_units`, as the interpreter looks
/// it up (first entry with `start <= offset < end`).
pub fn handler_for(entries: &[ExceptionTableEntry], offset_units: u32) -> Option<&ExceptionTableEntry> {
    entries.iter().find(|e| e.start <= offset_units && offset_units < e.end)
}

/// One exception-table varint: 6-bit chunks, most significant first, 0x40 on every chunk
/// but the last, 0x80 on the first byte of an entry.
fn write_exc_varint(out: &mut Vec<u8>, value: u32, entry_start: bool) {
    let mut chunks = vec![(value & 63) as u8];
    let mut v = value >> 6;
    while v != 0 {
        chunks.push((v & 63) as u8);
        v >>= 6;
    }
    chunks.reverse();
    let last = chunks.len() - 1;
    for (i, c) in chunks.into_iter().enumerate() {
        let mut b = c | if i < last { 64 } else { 0 };
        if i == 0 && entry_start {
            b |= 128;
        }
        out.push(b);
    }
}

/// `co_exceptiontable` bytes of `entries` (the inverse of [`parse_exception_table`]).
pub fn encode_exception_table(entries: &[ExceptionTableEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        write_exc_varint(&mut out, e.start, true);
        write_exc_varint(&mut out, e.end - e.start, false);
        write_exc_varint(&mut out, e.target, false);
        write_exc_varint(&mut out, (e.depth << 1) | e.lasti as u32, false);
    }
    out
}

/// The exception table of the same code with `units` code units put in front of it:
/// every range and target moves by `units`.
pub fn shift_exception_table(bytes: &[u8], units: u32) -> Vec<u8> {
    let moved: Vec<ExceptionTableEntry> = parse_exception_table(bytes)
        .into_iter()
        .map(|e| ExceptionTableEntry { start: e.start + units, end: e.end + units, target: e.target + units, ..e })
        .collect();
    encode_exception_table(&moved)
}

#[cfg(test)]
mod exception_table_writing {
    use super::*;

    #[test]
    fn encode_inverts_parse_and_shift_moves_every_offset() {
        let bytes = [0x82, 0x04, 0x41, 0x01, 0x03];
        assert_eq!(encode_exception_table(&parse_exception_table(&bytes)), bytes);
        let shifted = shift_exception_table(&bytes, 4);
        assert_eq!(parse_exception_table(&shifted), vec![ExceptionTableEntry { start: 6, end: 10, target: 69, depth: 1, lasti: true }]);
        // A value of several chunks: 0x1000 = 1, 0, 0 in 6-bit chunks.
        let e = [ExceptionTableEntry { start: 0x1000, end: 0x1001, target: 0, depth: 0, lasti: false }];
        let enc = encode_exception_table(&e);
        assert_eq!(&enc[..3], &[0x80 | 0x40 | 1, 0x40, 0]);
        assert_eq!(parse_exception_table(&enc), e);
        assert!(shift_exception_table(&[], 4).is_empty());
    }
}
