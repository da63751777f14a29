//! The C types of the standard library whose fields pyteleport reads: one entry each,
//! defined next to its decoder in the family file (`collections`, `datetime`, ...).
//! Adding a type: its entry in the family file and one line in `super::REGISTRY`.

use crate::error::Result;
use crate::layouts::Layout;
use crate::snapshot::{ObjId, Value};

use super::view::{Span, View};
use super::{c_type_named, Decoder, TypeShape};

/// One C type (or a few sharing a decoder and a layout).
pub struct CType {
    /// Dotted `tp_name`s: a class statement never gives such a name, so it identifies
    /// the C type (some are heap types made from a spec, mutable on older versions).
    pub names: &'static [&'static str],
    /// The fields read and their widths; the type is recognised only when this version
    /// has them all and its instances are large enough to hold them. Width 0: a field of
    /// another structure that only has to exist.
    pub fields: fn(&Layout) -> Vec<Span>,
    /// Decode one instance (of the type or of a Python class over it).
    pub decode: fn(&mut Decoder<'_>, &Instance) -> Result<Value>,
    /// Decoded in a shallow read (a dump) too, not only for a capture.
    pub shallow: bool,
}

/// What a registered decoder is given.
pub struct Instance {
    pub addr: u64,
    pub type_addr: u64,
    shape: TypeShape,
    /// The instance `__dict__` (a node), read before the C fields.
    pub dict: Option<ObjId>,
    /// The type's `fields` of this instance.
    pub view: View,
}

impl Instance {
    pub(super) fn shape(&self) -> &TypeShape {
        &self.shape
    }
}

impl std::fmt::Debug for CType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CType({})", self.names.join(" | "))
    }
}

impl CType {
    /// End of the last field read, or None when this version's table lacks one.
    pub fn last_field_end(&self, l: &Layout) -> Option<usize> {
        (self.fields)(l).iter().try_fold(0, |end, &(off, size)| off.map(|off| if size == 0 { end } else { end.max(off + size) }))
    }

    pub fn is(&'static self, other: &'static CType) -> bool {
        std::ptr::eq(self, other)
    }
}

impl<'a> Decoder<'a> {
    /// Which registered C type a type is (its header read by `type_header`).
    pub(super) fn registered_c_type(&mut self, hdr: &View) -> Result<Option<&'static CType>> {
        let l = self.layout();
        let name = self.c_string(hdr.ptr(l.type_name)?, 64)?;
        let Some(known) = c_type_named(&name) else { return Ok(None) };
        // Its instances must also hold every field read.
        let basicsize = hdr.i64(l.type_basicsize)?;
        Ok(Some(known).filter(|k| k.last_field_end(l).is_some_and(|end| basicsize >= end as i64)))
    }

    /// An instance of a registered C type: its dict first, then its fields, then its decoder.
    pub(super) fn decode_registered(&mut self, addr: u64, type_addr: u64, shape: &TypeShape, ctype: &'static CType) -> Result<Value> {
        let dict = self.instance_dict(addr, type_addr, shape)?;
        let fields: Vec<Span> = (ctype.fields)(self.layout()).into_iter().filter(|&(_, width)| width > 0).collect();
        let view = self.view_spans(addr, &fields)?;
        let instance = Instance { addr, type_addr, shape: *shape, dict, view };
        (ctype.decode)(self, &instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_entry_fits_every_version() {
        let mut seen = std::collections::HashSet::new();
        for c in super::super::REGISTRY {
            for n in c.names {
                assert!(seen.insert(*n), "{n} registered twice");
                assert!(std::ptr::eq(c_type_named(n).unwrap(), *c));
            }
            for l in crate::layouts::ALL {
                assert!(c.last_field_end(l).is_some(), "{:?} lacks a field of {:?}", l.version, c.names);
            }
        }
        assert!(c_type_named("collections.deque").is_some());
        assert!(c_type_named("deque").is_none());
    }
}
