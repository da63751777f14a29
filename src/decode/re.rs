//! `re.Pattern`: compiled again from its source and flags.

use crate::snapshot::Value;

use super::registry::CType;
use super::view::span;

pub static PATTERN: CType = CType {
    names: &["re.Pattern"],
    fields: |l| vec![span(l.pattern_pattern, 8), span(l.pattern_flags, 4)],
    decode: |d, i| {
        let l = d.layout();
        let source = d.object(i.view.ptr(l.pattern_pattern)?);
        let flags = d.synthetic_int(i.addr + 2, i.view.i32(l.pattern_flags)? as i64);
        Ok(Value::Rebuilt { type_name: "re.compile".into(), args: vec![source, Some(flags)], dict: None })
    },
    shallow: false,
};
