//! `_thread.lock` and `_thread.RLock` (what `threading.Lock()`/`RLock()` make).
//!
//! `pyteleport._reducers.new_lock(kind, held, count)`: a new lock, taken again as often
//! as the moving (main) thread held it; one held by another thread (which does not
//! move) comes free.

use crate::snapshot::reducers::Reducer;
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

pub static LOCK: CType = CType {
    names: &["_thread.lock"],
    fields: |l| vec![span(l.lock_locked, 1)],
    decode: |d, i| {
        let locked = i.view.u8(d.layout().lock_locked)? != 0;
        Ok(new_lock(d, i, "lock", locked, 1))
    },
    shallow: false,
};

pub static RLOCK: CType = CType {
    names: &["_thread.RLock"],
    fields: |l| vec![span(l.rlock_owner, 8), span(l.rlock_count, 8)],
    decode: |d, i| {
        let l = d.layout();
        let (owner, count) = (i.view.u64(l.rlock_owner)?, i.view.i64(l.rlock_count)?);
        let main_ident = match d.main_thread_state()? {
            Some(ts) => d.ptr(ts + l.tstate_thread_id as u64)?,
            None => 0,
        };
        let mine = count > 0 && owner != 0 && owner == main_ident;
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
