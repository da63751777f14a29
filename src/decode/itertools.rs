//! `itertools` objects a loop may be consuming: count as `count(start, step)`; the others
//! as an object that yields the same items from here on, made by `pyteleport._reducers`
//! helpers from what is left (not their pickle support, which 3.12+ deprecates with a
//! warning on stderr).

use crate::error::{Error, Result};
use crate::snapshot::reducers::Reducer;
use crate::snapshot::{ObjId, Value};

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

/// `count(start, step)`: the C counter until it would overflow, then an int.
pub static COUNT: CType = CType {
    names: &["itertools.count"],
    fields: |l| vec![span(l.count_cnt, 8), span(l.count_long_cnt, 8), span(l.count_long_step, 8)],
    decode: |d, i| {
        let (l, v) = (d.layout(), &i.view);
        let start = match d.object(v.ptr(l.count_long_cnt)?) {
            Some(big) => big,
            None => d.synthetic_int(i.addr + 2, v.i64(l.count_cnt)?),
        };
        let step = d.object(v.ptr(l.count_long_step)?);
        Ok(Value::Rebuilt { type_name: "itertools.count".into(), args: vec![Some(start), step], dict: None })
    },
    shallow: false,
};

pub static CHAIN: CType = CType {
    names: &["itertools.chain"],
    fields: |l| vec![span(l.chain_source, 8), span(l.chain_active, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let args = vec![or_none(d, i, l.chain_active, none)?, or_none(d, i, l.chain_source, none)?];
        rest(d, i, Reducer::ChainRest, args)
    },
    shallow: false,
};

pub static ISLICE: CType = CType {
    names: &["itertools.islice"],
    fields: |l| vec![span(l.islice_it, 8), span(l.islice_next, 8), span(l.islice_stop, 8), span(l.islice_step, 8), span(l.islice_cnt, 8)],
    decode: |d, i| {
        let (l, none, v, addr) = (d.layout(), d.none_id(), &i.view, i.addr);
        let (next, stop, step, cnt) = (v.i64(l.islice_next)?, v.i64(l.islice_stop)?, v.i64(l.islice_step)?, v.i64(l.islice_cnt)?);
        let start = Some(d.synthetic_int(addr + 2, (next - cnt).max(0)));
        let stop = if stop < 0 { none } else { Some(d.synthetic_int(addr + 3, (stop - cnt).max(0))) };
        let step = Some(d.synthetic_int(addr + 4, step.max(1)));
        let args = vec![or_none(d, i, l.islice_it, none)?, start, stop, step];
        rest(d, i, Reducer::IsliceRest, args)
    },
    shallow: false,
};

pub static REPEAT: CType = CType {
    names: &["itertools.repeat"],
    fields: |l| vec![span(l.repeat_element, 8), span(l.repeat_cnt, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let cnt = i.view.i64(l.repeat_cnt)?;
        let times = if cnt < 0 { none } else { Some(d.synthetic_int(i.addr + 2, cnt)) };
        let args = vec![or_none(d, i, l.repeat_element, none)?, times];
        rest(d, i, Reducer::RepeatRest, args)
    },
    shallow: false,
};

pub static CYCLE: CType = CType {
    names: &["itertools.cycle"],
    fields: |l| vec![span(l.cycle_it, 8), span(l.cycle_saved, 8), span(l.cycle_index, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let index = Some(d.synthetic_int(i.addr + 2, i.view.i64(l.cycle_index)?.max(0)));
        let args = vec![or_none(d, i, l.cycle_it, none)?, or_none(d, i, l.cycle_saved, none)?, index];
        rest(d, i, Reducer::CycleRest, args)
    },
    shallow: false,
};

pub static ACCUMULATE: CType = CType {
    names: &["itertools.accumulate"],
    fields: |l| vec![span(l.accumulate_total, 8), span(l.accumulate_it, 8), span(l.accumulate_binop, 8), span(l.accumulate_initial, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let mut args = Vec::with_capacity(4);
        for field in [l.accumulate_it, l.accumulate_binop, l.accumulate_total, l.accumulate_initial] {
            args.push(or_none(d, i, field, none)?);
        }
        rest(d, i, Reducer::AccumulateRest, args)
    },
    shallow: false,
};

/// The object a pointer field refers to, or None's node for NULL.
pub(super) fn or_none(d: &mut Decoder<'_>, inst: &Instance, field: usize, none: Option<ObjId>) -> Result<Option<ObjId>> {
    Ok(d.object(inst.view.ptr(field)?).or(none))
}

/// `pyteleport._reducers.<helper>(*args)`; every argument must be there (None included).
pub(super) fn rest(d: &mut Decoder<'_>, inst: &Instance, helper: Reducer, args: Vec<Option<ObjId>>) -> Result<Value> {
    let args: Vec<ObjId> = args.into_iter().collect::<Option<_>>().ok_or_else(|| Error::corrupt(inst.addr, "itertools object without its None"))?;
    Ok(d.call_reducer(inst.addr + 5, helper, args, None))
}
