//! `_random.Random`, the C base of `random.Random`.

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

/// Words of the Mersenne Twister state.
const N: usize = 624;

pub static RANDOM: CType = CType {
    names: &["_random.Random"],
    fields: |l| vec![span(l.random_index, 4), span(l.random_state, N * 4)],
    decode: decode_random,
    shallow: false,
};

/// random.Random's own pickle form: `cls()` then `setstate((3, 624 words + index,
/// gauss_next))`. Other attributes of a subclass are not carried.
fn decode_random(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let (l, addr, v) = (d.layout(), inst.addr, &inst.view);
    let index = v.i32(l.random_index)?;
    let mut words = Vec::with_capacity(N + 1);
    for i in 0..N {
        let word = v.u32(l.random_state + 4 * i)?;
        words.push(d.synthetic_int(addr + 8 + i as u64, word as i64));
    }
    words.push(d.synthetic_int(addr + 2, index as i64));
    let gauss_next = match d.instance_attribute(addr, inst.type_addr, inst.shape(), "gauss_next")? {
        Some(v) => d.object(v),
        None => d.none_id(),
    };
    let internal = d.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(words));
    let version = d.synthetic_int(addr + 4, 3);
    let mut state = vec![version, internal];
    state.extend(gauss_next);
    let state = d.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(state));
    d.reduce_by_type(addr, inst.type_addr, addr + 6, vec![], Some(state))
}
