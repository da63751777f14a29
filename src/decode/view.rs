//! Typed, bounds-checked views over one read of a target structure.
//!
//! A view is read once for the layout fields a decoder needs (the read spans exactly
//! those fields), then fields are taken out of it by the same layout offsets. A field
//! outside what was read, or one this CPython version does not have, is an error, never
//! a silent zero.

use crate::error::{Error, Result};

use super::Decoder;

/// A layout field: an offset every version has (`usize`) or one some lack (`Option<usize>`).
pub trait At: Copy {
    fn at(self) -> Option<usize>;
}

impl At for usize {
    fn at(self) -> Option<usize> {
        Some(self)
    }
}

impl At for Option<usize> {
    fn at(self) -> Option<usize> {
        self
    }
}

/// A field and its width in bytes. Width 0: a field of another structure, which only
/// has to exist in this version's table (nothing of it is read).
pub type Span = (Option<usize>, usize);

/// A field `width` bytes wide.
pub fn span(field: impl At, width: usize) -> Span {
    (field.at(), width)
}

/// Where a field is, or the error for a version without it.
pub fn offset(addr: u64, field: impl At) -> Result<usize> {
    field.at().ok_or_else(|| Error::corrupt(addr, "read of a field this CPython version does not have"))
}

/// Bytes `[start, start + len)` of the structure at `addr`.
pub struct View {
    addr: u64,
    start: usize,
    bytes: Vec<u8>,
}

impl View {
    /// The first and past-the-end offsets covering `spans` (width-0 spans only have to exist).
    pub fn extent(spans: &[Span]) -> Option<(usize, usize)> {
        let mut range: Option<(usize, usize)> = None;
        for &(at, width) in spans {
            let at = at?;
            if width == 0 {
                continue;
            }
            let end = at.checked_add(width)?;
            range = Some(match range {
                None => (at, end),
                Some((lo, hi)) => (lo.min(at), hi.max(end)),
            });
        }
        Some(range.unwrap_or((0, 0)))
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// `len` bytes at `field`.
    pub fn bytes(&self, field: impl At, len: usize) -> Result<&[u8]> {
        let at = offset(self.addr, field)?;
        at.checked_sub(self.start)
            .and_then(|rel| self.bytes.get(rel..rel.checked_add(len)?))
            .ok_or_else(|| Error::corrupt(self.addr + at as u64, format!("field of {len} bytes outside the {} bytes read", self.bytes.len())))
    }

    fn array<const N: usize>(&self, field: impl At) -> Result<[u8; N]> {
        let b = self.bytes(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u64(&self, field: impl At) -> Result<u64> {
        self.array(field).map(u64::from_le_bytes)
    }
    /// A pointer field (the target is 64-bit).
    pub fn ptr(&self, field: impl At) -> Result<u64> {
        self.u64(field)
    }
    pub fn i64(&self, field: impl At) -> Result<i64> {
        self.array(field).map(i64::from_le_bytes)
    }
    pub fn u32(&self, field: impl At) -> Result<u32> {
        self.array(field).map(u32::from_le_bytes)
    }
    pub fn i32(&self, field: impl At) -> Result<i32> {
        self.array(field).map(i32::from_le_bytes)
    }
    pub fn u8(&self, field: impl At) -> Result<u8> {
        self.array::<1>(field).map(|b| b[0])
    }
    pub fn i8(&self, field: impl At) -> Result<i8> {
        self.u8(field).map(|b| b as i8)
    }
    pub fn f64(&self, field: impl At) -> Result<f64> {
        self.u64(field).map(f64::from_bits)
    }
}

/// Little-endian words of a byte buffer (a pointer array, libmpdec's coefficient).
pub fn words(raw: &[u8]) -> impl Iterator<Item = u64> + '_ {
    raw.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
}

/// Little-endian 32-bit units of a byte buffer.
pub fn units32(raw: &[u8]) -> impl Iterator<Item = u32> + '_ {
    raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl<'a> Decoder<'a> {
    /// Read the fields of the structure at `addr` that `fields` name (8 bytes each).
    pub fn view<F: At>(&mut self, addr: u64, fields: &[F]) -> Result<View> {
        let mut lo = usize::MAX;
        let mut hi = 0;
        for &f in fields {
            let at = offset(addr, f)?;
            lo = lo.min(at);
            hi = hi.max(at + 8);
        }
        self.view_range(addr, if fields.is_empty() { 0 } else { lo }, hi)
    }

    /// Read the fields `spans` name, each of its own width.
    pub fn view_spans(&mut self, addr: u64, spans: &[Span]) -> Result<View> {
        if let Some(&(None, _)) = spans.iter().find(|s| s.0.is_none()) {
            return Err(Error::corrupt(addr, "read of a field this CPython version does not have"));
        }
        let (lo, hi) = View::extent(spans).ok_or_else(|| Error::corrupt(addr, "field offset overflow"))?;
        self.view_range(addr, lo, hi)
    }

    /// Bytes `[lo, hi)` of the structure at `addr`.
    pub fn view_range(&mut self, addr: u64, lo: usize, hi: usize) -> Result<View> {
        let bytes = if hi > lo { self.read(addr + lo as u64, hi - lo)? } else { vec![] };
        Ok(View { addr, start: lo, bytes })
    }

    /// `n` pointers from `at`.
    pub fn words_at(&mut self, at: u64, n: usize) -> Result<Vec<u64>> {
        if n == 0 {
            return Ok(vec![]);
        }
        Ok(words(&self.read(at, 8 * n)?).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_covers_the_fields_and_skips_existence_only_ones() {
        assert_eq!(View::extent(&[span(16usize, 8), span(Some(40), 4), span(1000usize, 0)]), Some((16, 44)));
        assert_eq!(View::extent(&[span(16usize, 8), span(None, 0)]), None);
        assert_eq!(View::extent(&[]), Some((0, 0)));
    }

    #[test]
    fn fields_outside_the_read_are_errors() {
        let v = View { addr: 0x1000, start: 16, bytes: (0u8..16).collect() };
        assert_eq!(v.u8(16usize).unwrap(), 0);
        assert_eq!(v.u32(20usize).unwrap(), u32::from_le_bytes([4, 5, 6, 7]));
        assert_eq!(v.u64(24usize).unwrap(), u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]));
        assert!(matches!(v.u64(28usize), Err(Error::Corrupt { .. })));
        assert!(matches!(v.u8(8usize), Err(Error::Corrupt { .. })));
        assert!(matches!(v.u8(None), Err(Error::Corrupt { .. })));
        assert!(matches!(v.u64(usize::MAX), Err(Error::Corrupt { .. })));
    }
}
