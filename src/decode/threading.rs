//! `_thread.lock` and `_thread.RLock` (what `threading.Lock()`/`RLock()` make).
//!
//! `pyteleport._reducers.new_lock(kind, held, count)`: a new lock. A `Lock` held is taken
//! again (any thread may release it). An `RLock` held by the thread that runs on the new
//! process's main thread is taken again there as often as it was held; one held by
//! another thread comes free and is listed in `Decoder::rlock_owners`, for that thread to
//! take again before it runs.

use crate::error::Error;
use crate::process::BuiltinType;
use crate::snapshot::reducers::Reducer;
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

pub static LOCK: CType = CType {
    names: &["_thread.lock"],
    fields: |l| vec![span(l.lock_locked, 1)],
    decode: |d, i| {
        // A `char locked` (3.11-3.13) or the low byte of a PyMutex (3.14+): bit 0 is held.
        let locked = i.view.u8(d.layout().lock_locked)? & 1 != 0;
        Ok(new_lock(d, i, "lock", locked, 1))
    },
    shallow: false,
};

pub static RLOCK: CType = CType {
    names: &["_thread.RLock"],
    fields: |l| vec![span(l.rlock_owner, 8), span(l.rlock_count, 8)],
    decode: |d, i| {
        let l = d.layout();
        let (owner, mut count) = (i.view.u64(l.rlock_owner)?, i.view.i64(l.rlock_count)?);
        if l.rlock_count_is_level && owner != 0 {
            count = count.saturating_add(1); // _PyRecursiveMutex counts re-entries only
        }
        let main_ident = match d.main_thread_state()? {
            Some(ts) => d.ptr(ts + l.tstate_thread_id as u64)?,
            None => 0,
        };
        let mine = count > 0 && owner != 0 && owner == main_ident;
        if count > 0 && owner != 0 && !mine {
            if let Some(&id) = d.graph.index.get(&i.addr) {
                d.rlock_owners.push((owner, id, count.clamp(1, u32::MAX as i64) as u32));
            }
        }
        Ok(new_lock(d, i, "RLock", mine, if mine { count } else { 1 }))
    },
    shallow: false,
};

/// `threading.local` (and classes over it): `thread_local(cls, args, kw, data)`, `data`
/// each thread's ident and its dict, flat (3.11, 3.12: the thread state's dict holds a
/// dummy under the local's key, the dummy the dict; 3.13: the local's own dict of
/// dicts, keyed by each thread state's key). The restore gives each thread its dict
/// again when it starts.
pub static LOCAL: CType = CType {
    names: &["_thread._local"],
    fields: |l| vec![span(l.local_args, 8), span(l.local_kw, 8)],
    decode: |d, i| {
        let (l, addr) = (d.layout(), i.addr);
        let none = d.none_id().ok_or_else(|| Error::corrupt(addr, "no None object"))?;
        let args = d.object(i.view.ptr(l.local_args)?).unwrap_or(none);
        let kw = d.object(i.view.ptr(l.local_kw)?).unwrap_or(none);
        let mut data = Vec::new();
        for ts in d.thread_states()? {
            let dict = match (l.local_localdicts, l.tstate_threading_local_key, l.local_key, l.localdummy_localdict) {
                (Some(dicts_at), Some(key_at), _, _) => {
                    let (dicts, key) = (d.ptr(addr + dicts_at as u64)?, d.ptr(ts + key_at as u64)?);
                    if dicts == 0 || key == 0 {
                        continue;
                    }
                    d.dict_entries(dicts)?.into_iter().find(|&(k, _)| k == key).map(|(_, v)| v)
                }
                (_, _, Some(key_at), Some(localdict_at)) => {
                    let (tdict, key) = (d.ptr(ts + l.tstate_dict as u64)?, d.ptr(addr + key_at as u64)?);
                    if tdict == 0 || key == 0 {
                        continue;
                    }
                    match d.dict_entries(tdict)?.into_iter().find(|&(k, _)| k == key) {
                        Some((_, dummy)) => Some(d.ptr(dummy + localdict_at as u64)?),
                        None => None,
                    }
                }
                _ => return Err(Error::corrupt(addr, "this version's threading.local layout is unknown")),
            };
            let Some(dict) = dict.and_then(|dict| d.object(dict)) else { continue };
            // The ident as an int node inside the thread state (no object starts there),
            // shared by every local that has data for this thread.
            let pseudo = ts + l.tstate_thread_id as u64 + 1;
            let ident = match d.graph.index.get(&pseudo) {
                Some(&id) => id,
                None => {
                    let ident = d.ptr(ts + l.tstate_thread_id as u64)?;
                    d.synthetic_int(pseudo, ident as i64)
                }
            };
            data.extend([ident, dict]);
        }
        let class = d.object(i.type_addr).ok_or_else(|| Error::corrupt(addr, "threading.local without a type"))?;
        let data = d.synthetic(addr + 2, BuiltinType::List, Value::List(data));
        Ok(d.call_reducer(addr + 3, Reducer::ThreadLocal, vec![class, args, kw, data], None))
    },
    shallow: false,
};

/// 3.13's `_thread._ThreadHandle` (what `Thread.join` waits on): a new one, `type()`,
/// which the restore gives to the thread it starts again, or marks done for a thread
/// that had ended (as the in-target reduce of `_reduce_core` answers; read here so
/// that a capture needing no other in-target work needs none for it).
pub static THREAD_HANDLE: CType = CType {
    names: &["_thread._ThreadHandle"],
    fields: |_| vec![],
    decode: |d, i| {
        let class = d.object(i.type_addr).ok_or_else(|| Error::corrupt(i.addr, "a thread handle without a type"))?;
        let args = d.synthetic(i.addr + 2, BuiltinType::Tuple, Value::Tuple(vec![]));
        Ok(Value::Reduce { callable: class, args, state: None, listitems: None, dictitems: None })
    },
    shallow: false,
};

fn new_lock(d: &mut Decoder<'_>, inst: &Instance, kind: &str, held: bool, count: i64) -> Value {
    let addr = inst.addr;
    let kind = d.synthetic_str(addr + 2, kind);
    let held = d.synthetic_int(addr + 3, held as i64);
    let count = d.synthetic_int(addr + 4, count);
    d.call_reducer(addr + 5, Reducer::NewLock, vec![kind, held, count], None)
}
