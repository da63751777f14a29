//! `functools`: partial, and lru_cache wrappers with their cache's entries.

use crate::error::{Error, Result};
use crate::process::BuiltinType;
use crate::snapshot::reducers::Reducer;
use crate::snapshot::{ObjId, Value};

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

/// Its pickle form: `cls(fn)` then `__setstate__((fn, args, kw, dict))`.
pub static PARTIAL: CType = CType {
    names: &["functools.partial"],
    fields: |l| vec![span(l.partial_fn, 8), span(l.partial_args, 8), span(l.partial_kw, 8), span(l.partial_dict, 8)],
    decode: decode_partial,
    shallow: false,
};

/// `pyteleport._reducers.lru_cached(maxsize, typed, func, entries, kwd_mark, hits,
/// misses)`: a new wrapper whose cache is filled again with the same entries, oldest
/// first (its eviction order), without calling the function.
pub static LRU_CACHE: CType = CType {
    names: &["functools._lru_cache_wrapper"],
    fields: |l| {
        vec![
            span(l.lru_root_next, 8),
            span(l.lru_typed, 4),
            span(l.lru_cache, 8),
            span(l.lru_hits, 8),
            span(l.lru_func, 8),
            span(l.lru_maxsize, 8),
            span(l.lru_misses, 8),
            span(l.lru_kwd_mark, 8),
            span(l.lru_link_next, 0),
            span(l.lru_link_key, 0),
            span(l.lru_link_result, 0),
        ]
    },
    decode: decode_lru_cache,
    shallow: false,
};

fn decode_partial(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let (l, addr, v) = (d.layout(), inst.addr, &inst.view);
    let fn_ = d.object(v.ptr(l.partial_fn)?).ok_or_else(|| Error::corrupt(addr, "partial without a function"))?;
    let none = d.none_id();
    let mut state = vec![fn_];
    for at in [l.partial_args, l.partial_kw, l.partial_dict] {
        if let Some(item) = d.object(v.ptr(at)?).or(none) {
            state.push(item);
        }
    }
    if state.len() != 4 {
        return Err(Error::corrupt(addr, "partial without args"));
    }
    let state = d.synthetic(addr + 2, BuiltinType::Tuple, Value::Tuple(state));
    d.reduce_by_type(addr, inst.type_addr, addr + 3, vec![fn_], Some(state))
}

fn decode_lru_cache(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let (l, addr, v) = (d.layout(), inst.addr, &inst.view);
    let maxsize = v.i64(l.lru_maxsize)?;
    let cache = v.ptr(l.lru_cache)?;
    let mut flat = Vec::new();
    let mut push = |me: &mut Decoder<'_>, key: u64, result: u64| {
        if let (Some(k), Some(r)) = (me.object(key), me.object(result)) {
            flat.push(k);
            flat.push(r);
        }
    };
    if maxsize < 0 {
        // Unbounded: the dict maps keys to results, in insertion order.
        for (k, r) in d.dict_entries(cache)? {
            push(d, k, r);
        }
    } else if maxsize > 0 {
        // Bounded: results hang on a ring of links from the least recently used.
        let limit = d.len_of(cache)? + 1;
        let mut link = v.ptr(l.lru_root_next)?;
        let mut seen = 0;
        while link != addr && link != 0 {
            seen += 1;
            if seen > limit {
                return Err(Error::corrupt(addr, "lru_cache ring longer than its cache"));
            }
            let node = d.view(link, &[l.lru_link_next, l.lru_link_key, l.lru_link_result])?;
            push(d, node.ptr(l.lru_link_key)?, node.ptr(l.lru_link_result)?);
            link = node.ptr(l.lru_link_next)?;
        }
    }
    let none = d.none_id();
    let maxsize = if maxsize < 0 { none } else { Some(d.synthetic_int(addr + 2, maxsize)) };
    let typed = d.synthetic_int(addr + 3, v.i32(l.lru_typed)? as i64);
    let func = d.object(v.ptr(l.lru_func)?);
    let entries = d.synthetic(addr + 4, BuiltinType::List, Value::List(flat));
    let kwd_mark = d.object(v.ptr(l.lru_kwd_mark)?).or(none);
    let hits = Some(d.synthetic_int(addr + 7, v.i64(l.lru_hits)?.max(0)));
    let misses = Some(d.synthetic_int(addr + 8, v.i64(l.lru_misses)?.max(0)));
    let args: Vec<ObjId> = [maxsize, Some(typed), func, Some(entries), kwd_mark, hits, misses]
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| Error::corrupt(addr, "lru_cache wrapper without its function"))?;
    Ok(d.call_reducer(addr + 5, Reducer::LruCached, args, inst.dict))
}
