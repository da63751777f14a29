//! `_thread.lock` and `_thread.RLock` (what `threading.Lock()`/`RLock()` make).
//!
//! `pyteleport._reducers.new_lock(kind, held, count)`: a new lock. A `Lock` held is taken
//! again (any thread may release it). An `RLock` held by the thread that runs on the new
//! process's main thread is taken again there as often as it was held; one held by
//! another thread comes free and is listed in `Decoder::rlock_owners`, for that thread to
//! take again before it runs.

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

fn new_lock(d: &mut Decoder<'_>, inst: &Instance, kind: &str, held: bool, count: i64) -> Value {
    let addr = inst.addr;
    let kind = d.synthetic_str(addr + 2, kind);
    let held = d.synthetic_int(addr + 3, held as i64);
    let count = d.synthetic_int(addr + 4, count);
    d.call_reducer(addr + 5, Reducer::NewLock, vec![kind, held, count], None)
}
