//! `weakref.ref` (and Python classes over it: `KeyedRef`, `WeakMethod`), `weakref.proxy`
//! and callable proxies: what `WeakValueDictionary`, `WeakSet`, thread pools and progress
//! bars are built of.
//!
//! `pyteleport._reducers.weak_ref(kind, cls, referent, callback)` makes a new reference
//! of the same kind and class to the (carried) referent, with the same callback. The
//! referent is carried like any object a reference reaches; a reference whose referent
//! had died (`wr_object` is None) comes back dead. A subclass's `__dict__` and slots
//! (`KeyedRef.key`) are its state.

use crate::error::{Error, Result};
use crate::process::BuiltinType;
use crate::snapshot::reducers::Reducer;
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

pub static WEAKREF: CType = CType {
    names: &["weakref.ReferenceType"],
    fields: |l| vec![span(l.weakref_object, 8), span(l.weakref_callback, 8)],
    decode: |d, i| decode_weakref(d, i, "ref"),
    shallow: false,
};

pub static PROXY: CType = CType {
    names: &["weakref.ProxyType", "weakref.CallableProxyType"],
    fields: |l| vec![span(l.weakref_object, 8), span(l.weakref_callback, 8)],
    decode: |d, i| decode_weakref(d, i, "proxy"),
    shallow: false,
};

fn decode_weakref(d: &mut Decoder<'_>, inst: &Instance, kind: &str) -> Result<Value> {
    let (l, addr) = (d.layout(), inst.addr);
    let referent = inst.view.ptr(l.weakref_object)?;
    if referent == 0 {
        return Err(Error::corrupt(addr, "weak reference without a referent"));
    }
    // Dead: its referent is None (no live object can be None's weak referent).
    let referent = d.object(referent).ok_or_else(|| Error::corrupt(addr, "weak reference without a referent"))?;
    let callback = match d.object(inst.view.ptr(l.weakref_callback)?) {
        Some(cb) => cb,
        None => d.none_id().ok_or_else(|| Error::corrupt(addr, "no None object"))?,
    };
    let class = d.object(inst.type_addr).ok_or_else(|| Error::corrupt(addr, "weak reference without a type"))?;
    let kind = d.synthetic_str(addr + 2, kind);
    // addr + 1 may be the instance's values-only dict (see split_values_dict).
    let slots = d.instance_slots(addr, inst.type_addr)?;
    let state = if inst.dict.is_some() || !slots.is_empty() {
        let mut items = Vec::new();
        for (i, (name, value)) in slots.into_iter().enumerate() {
            if let Some(value) = value {
                items.push((d.synthetic_str(addr + 8 + 2 * i as u64, name), value));
            }
        }
        let slots = d.synthetic(addr + 3, BuiltinType::Dict, Value::Dict(items));
        let dict = match inst.dict {
            Some(dict) => dict,
            None => d.none_id().ok_or_else(|| Error::corrupt(addr, "no None object"))?,
        };
        Some(d.synthetic(addr + 4, BuiltinType::Tuple, Value::Tuple(vec![dict, slots])))
    } else {
        None
    };
    Ok(d.call_reducer(addr + 5, Reducer::WeakRef, vec![kind, class, referent, callback], state))
}
