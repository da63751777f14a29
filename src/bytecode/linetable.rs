//! The location table (PEP 626/657, Objects/locations.md): code units to lines.

/// A range of code units sharing one line (`None`: no location).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRange {
    pub start: u32,
    pub end: u32,
    pub line: Option<i32>,
}

/// Little-endian 6-bit varint (location table flavour).
fn read_loc_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut b = *bytes.get(*pos)?;
    *pos += 1;
    let mut val = (b & 63) as u64;
    let mut shift = 0u32;
    while b & 64 != 0 {
        b = *bytes.get(*pos)?;
        *pos += 1;
        shift += 6;
        if shift >= 64 {
            return None;
        }
        val |= ((b & 63) as u64) << shift;
    }
    Some(val)
}

fn read_loc_svarint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let u = read_loc_varint(bytes, pos)?;
    Some(if u & 1 != 0 { -((u >> 1) as i64) } else { (u >> 1) as i64 })
}

/// Decode the location table into line ranges (one per entry, not merged).
/// Decoding stops at the first malformed entry.
pub fn line_ranges(linetable: &[u8], first_line: i32) -> Vec<LineRange> {
    let mut out = Vec::new();
    let mut line = first_line as i64;
    let mut addr: u32 = 0;
    let mut pos = 0usize;
    while let Some(&first) = linetable.get(pos) {
        if first & 0x80 == 0 {
            break; // not an entry start: corrupt
        }
        let code = (first >> 3) & 15;
        let len = (first & 7) as u32 + 1;
        let mut p = pos + 1;
        let delta: i64 = match code {
            15 => 0,
            13 | 14 => match read_loc_svarint(linetable, &mut p) {
                Some(d) => d,
                None => break,
            },
            10..=12 => (code - 10) as i64,
            _ => 0,
        };
        line = line.saturating_add(delta);
        let l = if code == 15 { None } else { i32::try_from(line).ok() };
        let Some(end) = addr.checked_add(len) else { break };
        out.push(LineRange { start: addr, end, line: l });
        addr = end;
        // Skip the rest of the entry (all following bytes have bit 7 clear).
        pos += 1;
        while let Some(&b) = linetable.get(pos) {
            if b & 0x80 != 0 {
                break;
            }
            pos += 1;
        }
    }
    out
}

/// Line number of the instruction at `offset_units` (as `co_lines()` /
/// `co_positions()` report it), `None` for no location or out of range.
pub fn line_for_offset(linetable: &[u8], first_line: i32, offset_units: u32) -> Option<i32> {
    // Same decoding as `line_ranges`, stopping at the matching entry.
    let mut line = first_line as i64;
    let mut addr: u32 = 0;
    let mut pos = 0usize;
    while let Some(&first) = linetable.get(pos) {
        if first & 0x80 == 0 {
            return None;
        }
        let code = (first >> 3) & 15;
        let len = (first & 7) as u32 + 1;
        let mut p = pos + 1;
        let delta: i64 = match code {
            15 => 0,
            13 | 14 => read_loc_svarint(linetable, &mut p)?,
            10..=12 => (code - 10) as i64,
            _ => 0,
        };
        line = line.saturating_add(delta);
        let end = addr.checked_add(len)?;
        if offset_units >= addr && offset_units < end {
            return if code == 15 { None } else { i32::try_from(line).ok() };
        }
        addr = end;
        pos += 1;
        while let Some(&b) = linetable.get(pos) {
            if b & 0x80 != 0 {
                break;
            }
            pos += 1;
        }
    }
    None
}
