//! `collections`: deque, defaultdict, OrderedDict, and namedtuple's field accessors.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::process::BuiltinType;
use crate::snapshot::{ObjId, Value};

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

/// `deque((), maxlen)` then its items, as pickle does.
pub static DEQUE: CType = CType {
    names: &["collections.deque"],
    fields: |l| vec![span(l.deque_leftblock, 8), span(l.deque_leftindex, 8), span(l.deque_maxlen, 8), span(l.deque_block_rightlink, 0)],
    decode: decode_deque,
    shallow: false,
};

/// A dict subclass instance whose `default_factory` is set like a slot.
pub static DEFAULTDICT: CType = CType {
    names: &["collections.defaultdict"],
    fields: |l| vec![span(l.defaultdict_factory, 8)],
    decode: |d, i| d.decode_dict_subclass(i, true),
    shallow: false,
};

/// Its items in its own order (its linked list, which `move_to_end` makes differ from the dict's).
pub static ORDERED_DICT: CType = CType {
    names: &["collections.OrderedDict"],
    fields: |l| vec![span(l.odict_first, 8), span(l.odictnode_next, 0)],
    decode: |d, i| d.decode_dict_subclass(i, false),
    shallow: false,
};

/// A namedtuple field accessor: `_tuplegetter(index, doc)` (read for a dump too).
pub static TUPLEGETTER: CType = CType {
    // 3.11 names it after its C module, 3.12+ after `collections`
    names: &["_collections._tuplegetter", "collections._tuplegetter"],
    fields: |l| vec![span(l.tuplegetter_index, 8), span(l.tuplegetter_doc, 8)],
    decode: decode_tuplegetter,
    shallow: true,
};

fn decode_deque(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let (l, addr) = (d.layout(), inst.addr);
    let len = d.len_of(addr)?;
    if len > d.limits.max_len {
        return Err(Error::Limit(format!("deque of {len} items at {addr:#x}")));
    }
    let v = &inst.view;
    let (mut block, mut index, maxlen) = (v.ptr(l.deque_leftblock)?, v.i64(l.deque_leftindex)?, v.i64(l.deque_maxlen)?);
    let per_block = ((l.deque_block_rightlink - l.deque_block_data) / 8) as i64;
    if !(0..per_block).contains(&index) {
        return Err(Error::corrupt(addr, "deque index outside its block"));
    }
    let block_end = l.deque_block_rightlink + 8;
    let mut items = Vec::with_capacity(len);
    let mut data = d.view_range(block, 0, block_end)?;
    while items.len() < len {
        if index == per_block {
            block = data.ptr(l.deque_block_rightlink)?;
            data = d.view_range(block, 0, block_end)?;
            index = 0;
        }
        let item = data.ptr(l.deque_block_data + 8 * index as usize)?;
        items.push(d.object(item).ok_or_else(|| Error::corrupt(addr, "null item in a deque"))?);
        index += 1;
    }
    // addr + 1 may be the instance's values-only dict (see split_values_dict).
    let listitems = d.synthetic(addr + 2, BuiltinType::List, Value::List(items));
    let empty = d.synthetic(addr + 3, BuiltinType::Tuple, Value::Tuple(vec![]));
    let mut args = vec![empty];
    if maxlen >= 0 {
        args.push(d.synthetic_int(addr + 4, maxlen));
    }
    let args = d.synthetic(addr + 5, BuiltinType::Tuple, Value::Tuple(args));
    let callable = d.object(inst.type_addr).ok_or_else(|| Error::corrupt(addr, "deque without a type"))?;
    Ok(Value::Reduce { callable, args, state: inst.dict, listitems: Some(listitems), dictitems: None })
}

fn decode_tuplegetter(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let (l, addr) = (d.layout(), inst.addr);
    let index = inst.view.i64(l.tuplegetter_index)?;
    if !(0..1 << 30).contains(&index) {
        return Err(Error::corrupt(addr, "namedtuple field index out of range"));
    }
    // The index is a C integer, carried as a synthetic int node.
    let index_id = d.synthetic_int(addr + 1, index);
    let doc = d.object(inst.view.ptr(l.tuplegetter_doc)?);
    Ok(Value::Rebuilt { type_name: "_collections._tuplegetter".into(), args: vec![Some(index_id), doc], dict: None })
}

impl<'a> Decoder<'a> {
    /// defaultdict and OrderedDict (and Python classes over them): the dict part, slots,
    /// and the factory or the order.
    fn decode_dict_subclass(&mut self, inst: &Instance, defaultdict: bool) -> Result<Value> {
        let (l, addr) = (self.layout(), inst.addr);
        let mut base = self.decode_builtin(addr, BuiltinType::Dict)?;
        let mut slots = self.instance_slots(addr, inst.type_addr)?;
        if defaultdict {
            let factory = inst.view.ptr(l.defaultdict_factory)?;
            slots.push(("default_factory".into(), self.object(factory)));
        } else if let Value::Dict(pairs) = &mut base {
            let by_key: HashMap<ObjId, ObjId> = pairs.iter().copied().collect();
            let mut ordered = Vec::with_capacity(pairs.len());
            let mut node = inst.view.ptr(l.odict_first)?;
            while node != 0 && ordered.len() < pairs.len() {
                let v = self.view(node, &[l.odictnode_key, l.odictnode_next])?;
                let key = self.object(v.ptr(l.odictnode_key)?);
                match key.and_then(|k| by_key.get(&k).map(|&v| (k, v))) {
                    Some(pair) => ordered.push(pair),
                    None => return Err(Error::corrupt(addr, "OrderedDict order names a key its dict lacks")),
                }
                node = v.ptr(l.odictnode_next)?;
            }
            if ordered.len() != pairs.len() || node != 0 {
                return Err(Error::corrupt(addr, "OrderedDict order and dict differ in length"));
            }
            *pairs = ordered;
        }
        Ok(Value::Instance { dict: inst.dict, slots, base: Some(Box::new(base)) })
    }
}
