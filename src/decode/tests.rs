//! The decoder against objects built by hand in fake memory, with every version's layout.

use ptrace_tools::memory::{FakeMemory, MemoryReader};

use crate::error::Error;
use crate::layouts::{self, Layout};
use crate::process::{BuiltinType, PythonProcess, Symbols};
use crate::snapshot::{ObjId, PyStr, Value};

use super::{Decoder, Limits};

/// A fake heap: each object its own region, laid out by one version's table.
struct Heap {
    l: &'static Layout,
    mem: FakeMemory,
    next: u64,
    sym: Symbols,
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

impl Heap {
    fn new(l: &'static Layout) -> Heap {
        let mut h = Heap { l, mem: FakeMemory::new(), next: 0x10_0000, sym: Symbols::default() };
        // `type` is its own type; the others are its instances.
        let type_type = h.type_object(None, "type", 0);
        h.register(type_type, BuiltinType::Type);
        for (name, kind) in [
            ("object", BuiltinType::Object),
            ("int", BuiltinType::Int),
            ("str", BuiltinType::Str),
            ("tuple", BuiltinType::Tuple),
            ("list", BuiltinType::List),
            ("dict", BuiltinType::Dict),
            ("NoneType", BuiltinType::NoneType),
        ] {
            let t = h.type_object(Some(type_type), name, 0);
            h.register(t, kind);
        }
        let none_type = h.sym.type_addr[&BuiltinType::NoneType];
        h.sym.none = h.object(16, none_type, &[]);
        h
    }

    fn register(&mut self, addr: u64, kind: BuiltinType) {
        self.sym.types.insert(addr, kind);
        self.sym.type_addr.insert(kind, addr);
    }

    fn alloc(&mut self, bytes: Vec<u8>) -> u64 {
        let addr = self.next;
        self.next += (bytes.len() as u64 + 64 + 15) & !15;
        self.mem.insert(addr, bytes);
        addr
    }

    /// An object of `size` bytes of type `ty` with `fields` set.
    fn object(&mut self, size: usize, ty: u64, fields: &[(usize, Vec<u8>)]) -> u64 {
        let mut b = vec![0u8; size];
        put(&mut b, 0, &1u64.to_le_bytes());
        put(&mut b, self.l.object_type, &ty.to_le_bytes());
        for (at, v) in fields {
            put(&mut b, *at, v);
        }
        self.alloc(b)
    }

    fn type_of(&self, kind: BuiltinType) -> u64 {
        self.sym.type_addr[&kind]
    }

    /// A static type named `name` (dotted for a C type of a module), base `object`; of
    /// type `metatype` (None: itself).
    fn type_object(&mut self, metatype: Option<u64>, name: &str, basicsize: i64) -> u64 {
        let mut text = name.as_bytes().to_vec();
        text.resize(64, 0);
        let name_addr = self.alloc(text);
        let metatype = metatype.unwrap_or(self.next);
        let l = self.l;
        let base = self.sym.type_addr.get(&BuiltinType::Object).copied().unwrap_or(0);
        self.object(
            1024,
            metatype,
            &[
                (l.type_name, name_addr.to_le_bytes().to_vec()),
                (l.type_basicsize, basicsize.to_le_bytes().to_vec()),
                (l.type_base, base.to_le_bytes().to_vec()),
            ],
        )
    }

    fn int(&mut self, v: i128) -> u64 {
        let l = self.l;
        let mut digits = Vec::new();
        let mut rest = v.unsigned_abs();
        while rest != 0 {
            digits.push((rest & ((1 << 30) - 1)) as u32);
            rest >>= 30;
        }
        let n = digits.len();
        let mut fields: Vec<(usize, Vec<u8>)> = digits.iter().enumerate().map(|(i, d)| (l.long_digits + 4 * i, d.to_le_bytes().to_vec())).collect();
        match l.long_lv_tag {
            Some(at) => {
                let sign = if v < 0 {
                    2
                } else if v == 0 {
                    1
                } else {
                    0
                };
                fields.push((at, (((n as u64) << 3) | sign).to_le_bytes().to_vec()));
            }
            None => fields.push((l.var_object_size, (if v < 0 { -(n as i64) } else { n as i64 }).to_le_bytes().to_vec())),
        }
        let ty = self.type_of(BuiltinType::Int);
        self.object(l.long_digits + 4 * n.max(1), ty, &fields)
    }

    /// A compact str (ASCII, or of the narrowest kind that holds it).
    fn str(&mut self, s: &str) -> u64 {
        let l = self.l;
        let cps: Vec<u32> = s.chars().map(|c| c as u32).collect();
        let max = cps.iter().copied().max().unwrap_or(0);
        let ascii = max < 128;
        let kind: usize = if max < 256 {
            1
        } else if max < 65536 {
            2
        } else {
            4
        };
        let data_at = if ascii { l.ascii_object_size } else { l.compact_object_size };
        let st = l.unicode_state;
        let state = ((kind as u32) << st.kind.0) | (1 << st.compact.0) | ((ascii as u32) << st.ascii.0);
        let mut data = Vec::new();
        for c in &cps {
            data.extend_from_slice(&c.to_le_bytes()[..kind]);
        }
        let ty = self.type_of(BuiltinType::Str);
        let fields = [(l.ascii_length, (cps.len() as i64).to_le_bytes().to_vec()), (l.ascii_state, state.to_le_bytes().to_vec()), (data_at, data)];
        self.object(data_at + (cps.len() + 1) * kind, ty, &fields)
    }

    fn tuple(&mut self, items: &[u64]) -> u64 {
        let l = self.l;
        let mut fields = vec![(l.var_object_size, (items.len() as i64).to_le_bytes().to_vec())];
        fields.extend(items.iter().enumerate().map(|(i, p)| (l.tuple_items + 8 * i, p.to_le_bytes().to_vec())));
        let ty = self.type_of(BuiltinType::Tuple);
        self.object(l.tuple_items + 8 * items.len().max(1), ty, &fields)
    }

    /// A list and the address of its item array (to fill in later, for cycles).
    fn list(&mut self, n: usize) -> (u64, u64) {
        let l = self.l;
        let array = self.alloc(vec![0u8; 8 * n.max(1)]);
        let ty = self.type_of(BuiltinType::List);
        let list = self.object(
            l.list_items + 16,
            ty,
            &[(l.var_object_size, (n as i64).to_le_bytes().to_vec()), (l.list_items, array.to_le_bytes().to_vec())],
        );
        (list, array)
    }

    fn set_items(&mut self, array: u64, items: &[u64]) {
        self.mem.insert(array, items.iter().flat_map(|p| p.to_le_bytes()).collect::<Vec<u8>>());
    }

    /// A combined-table dict with general keys (hash, key, value entries).
    fn dict(&mut self, items: &[(u64, u64)]) -> u64 {
        let l = self.l;
        let index_bytes = 8;
        let entries_at = l.dictkeys_indices + index_bytes;
        let mut keys = vec![0u8; entries_at + l.dict_key_entry_size * items.len().max(1)];
        put(&mut keys, 0, &1u64.to_le_bytes());
        put(&mut keys, l.dictkeys_log2_size, &[3]);
        put(&mut keys, l.dictkeys_log2_index_bytes, &[3]);
        put(&mut keys, l.dictkeys_kind, &[0]);
        put(&mut keys, l.dictkeys_nentries, &(items.len() as i64).to_le_bytes());
        for (i, (k, v)) in items.iter().enumerate() {
            let at = entries_at + l.dict_key_entry_size * i;
            put(&mut keys, at + 8, &k.to_le_bytes());
            put(&mut keys, at + 16, &v.to_le_bytes());
        }
        let keys = self.alloc(keys);
        let ty = self.type_of(BuiltinType::Dict);
        self.object(l.dict_values + 8, ty, &[(l.dict_used, (items.len() as i64).to_le_bytes().to_vec()), (l.dict_keys, keys.to_le_bytes().to_vec())])
    }
}

/// Decode `root` (and what it reaches) out of the heap.
fn decode(h: &Heap, root: u64, deep: bool) -> (crate::error::Result<()>, crate::snapshot::ObjectGraph, Option<ObjId>) {
    let py = PythonProcess::for_test(h.l, h.sym.clone());
    let mut d = Decoder::new(&py, &h.mem, Limits { deep, ..Limits::default() });
    let id = d.object(root);
    let result = d.drain();
    (result, d.graph, id)
}

fn int_of(v: &Value) -> i128 {
    match v {
        Value::Int { negative, digits } => {
            let mag = digits.iter().rev().fold(0i128, |acc, &d| (acc << 30) | d as i128);
            if *negative {
                -mag
            } else {
                mag
            }
        }
        other => panic!("not an int: {other:?}"),
    }
}

#[test]
fn ints_small_and_big() {
    for l in layouts::ALL {
        let mut h = Heap::new(l);
        for v in [0i128, 5, -7, 1 << 30, -(1 << 62), (1i128 << 100) + 12345, -((1i128 << 90) - 1)] {
            let addr = h.int(v);
            let (r, g, id) = decode(&h, addr, false);
            r.unwrap();
            assert_eq!(int_of(&g.get(id.unwrap()).value), v, "{v} on {:?}", l.version);
        }
    }
}

#[test]
fn strs_ascii_and_not() {
    for l in layouts::ALL {
        let mut h = Heap::new(l);
        for s in ["", "hello", "héllo", "日本語", "emoji 🐍!"] {
            let addr = h.str(s);
            let (r, g, id) = decode(&h, addr, false);
            r.unwrap();
            match &g.get(id.unwrap()).value {
                Value::Str(PyStr::Text(t)) => assert_eq!(t, s, "{:?}", l.version),
                other => panic!("{s:?} decoded as {other:?}"),
            }
        }
    }
}

#[test]
fn containers_keep_sharing_and_cycles() {
    for l in layouts::ALL {
        let mut h = Heap::new(l);
        let shared = h.str("shared");
        let one = h.int(1);
        let tuple = h.tuple(&[shared, shared, one]);
        let (list, array) = h.list(3);
        let (k1, k2) = (h.str("self"), h.str("tuple"));
        let dict = h.dict(&[(k1, list), (k2, tuple)]);
        h.set_items(array, &[list, tuple, dict]);
        let (r, g, id) = decode(&h, list, false);
        r.unwrap();
        let list_id = id.unwrap();
        let Value::List(items) = &g.get(list_id).value else { panic!("not a list") };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], list_id, "a list containing itself is one node");
        let Value::Tuple(t) = &g.get(items[1]).value else { panic!("not a tuple") };
        assert_eq!(t[0], t[1], "one str referred to twice is one node");
        assert_eq!(g.str_of(t[0]).as_deref(), Some("shared"));
        assert_eq!(int_of(&g.get(t[2]).value), 1);
        let Value::Dict(pairs) = &g.get(items[2]).value else { panic!("not a dict") };
        let keys: Vec<_> = pairs.iter().map(|&(k, _)| g.str_of(k).unwrap().into_owned()).collect();
        assert_eq!(keys, ["self", "tuple"]);
        assert_eq!(pairs[0].1, list_id, "the dict refers back to the list");
        assert_eq!(pairs[1].1, items[1]);
        assert_eq!(g.get(list_id).addr, list);
    }
}

#[test]
fn timedelta_through_the_registry() {
    for l in layouts::ALL {
        let mut h = Heap::new(l);
        let type_type = h.type_of(BuiltinType::Type);
        let td_type = h.type_object(Some(type_type), "datetime.timedelta", (l.delta_microseconds + 8) as i64);
        let td = h.object(
            l.delta_microseconds + 8,
            td_type,
            &[
                (l.delta_days, (-3i32).to_le_bytes().to_vec()),
                (l.delta_seconds, 4000i32.to_le_bytes().to_vec()),
                (l.delta_microseconds, 25i32.to_le_bytes().to_vec()),
            ],
        );
        let (r, g, id) = decode(&h, td, true);
        r.unwrap();
        let Value::Reduce { callable, args, state, listitems, dictitems } = &g.get(id.unwrap()).value else { panic!("not reduced") };
        assert_eq!(g.get(*callable).addr, td_type);
        assert!(state.is_none() && listitems.is_none() && dictitems.is_none());
        let Value::Tuple(args) = &g.get(*args).value else { panic!("args not a tuple") };
        let values: Vec<i128> = args.iter().map(|&a| int_of(&g.get(a).value)).collect();
        assert_eq!(values, [-3, 4000, 25], "{:?}", l.version);
        // A shallow read (a dump) leaves it opaque, as for any C type it cannot see into.
        let (r, g, id) = decode(&h, td, false);
        r.unwrap();
        assert!(matches!(g.get(id.unwrap()).value, Value::Opaque));
        // Instances too small for the fields read are not taken for the type.
        let small_type = h.type_object(Some(type_type), "datetime.timedelta", 16);
        let small = h.object(64, small_type, &[]);
        let (r, g, id) = decode(&h, small, true);
        r.unwrap();
        assert!(matches!(g.get(id.unwrap()).value, Value::Opaque));
    }
}

#[test]
fn deque_through_the_registry() {
    let l = layouts::for_version(3, 12).unwrap();
    let mut h = Heap::new(l);
    let type_type = h.type_of(BuiltinType::Type);
    let deque_type = h.type_object(Some(type_type), "collections.deque", (l.deque_maxlen + 8) as i64);
    let items = [h.int(10), h.int(20), h.str("x")];
    let per_block = (l.deque_block_rightlink - l.deque_block_data) / 8;
    // Two blocks: the items start at the last slot of the first one.
    let mut second = vec![0u8; l.deque_block_rightlink + 8];
    put(&mut second, l.deque_block_data, &items[1].to_le_bytes());
    put(&mut second, l.deque_block_data + 8, &items[2].to_le_bytes());
    let second = h.alloc(second);
    let mut first = vec![0u8; l.deque_block_rightlink + 8];
    put(&mut first, l.deque_block_data + 8 * (per_block - 1), &items[0].to_le_bytes());
    put(&mut first, l.deque_block_rightlink, &second.to_le_bytes());
    let first = h.alloc(first);
    let deque = |h: &mut Heap, index: i64| {
        h.object(
            l.deque_maxlen + 8,
            deque_type,
            &[
                (l.var_object_size, 3i64.to_le_bytes().to_vec()),
                (l.deque_leftblock, first.to_le_bytes().to_vec()),
                (l.deque_leftindex, index.to_le_bytes().to_vec()),
                (l.deque_maxlen, 5i64.to_le_bytes().to_vec()),
            ],
        )
    };
    let good = deque(&mut h, per_block as i64 - 1);
    let (r, g, id) = decode(&h, good, true);
    r.unwrap();
    let Value::Reduce { callable, args, listitems: Some(listitems), .. } = &g.get(id.unwrap()).value else { panic!("not reduced") };
    assert_eq!(g.get(*callable).addr, deque_type);
    let Value::List(got) = &g.get(*listitems).value else { panic!() };
    assert_eq!(got.iter().map(|&i| g.get(i).addr).collect::<Vec<_>>(), items);
    let Value::Tuple(args) = &g.get(*args).value else { panic!() };
    assert_eq!(args.len(), 2);
    assert_eq!(int_of(&g.get(args[1]).value), 5);
    // An index outside its block is inconsistent memory, said so.
    let bad = deque(&mut h, per_block as i64 + 3);
    let (r, _, _) = decode(&h, bad, true);
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
}

#[test]
fn inconsistent_memory_is_an_error_not_a_zero() {
    for l in layouts::ALL {
        let mut h = Heap::new(l);
        // A negative size.
        let ty = h.type_of(BuiltinType::Tuple);
        let bad = h.object(l.tuple_items + 8, ty, &[(l.var_object_size, (-1i64).to_le_bytes().to_vec())]);
        let (r, _, _) = decode(&h, bad, false);
        assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
        // A str whose kind bits say nothing valid.
        let s = h.str("abc");
        let st = l.unicode_state;
        let mut bytes = h.mem.read_vec(s, l.ascii_object_size + 4).unwrap();
        put(&mut bytes, l.ascii_state, &((3u32 << st.kind.0) | (1 << st.compact.0)).to_le_bytes());
        h.mem.insert(s, bytes);
        let (r, _, _) = decode(&h, s, false);
        assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
        // A dict whose keys object is cut short: the read fails, nothing is made up.
        let k = h.str("k");
        let dict = h.dict(&[(k, k)]);
        let keys = u64::from_le_bytes(h.mem.read_vec(dict + l.dict_keys as u64, 8).unwrap().try_into().unwrap());
        let head = h.mem.read_vec(keys, l.dictkeys_indices + 4).unwrap();
        h.mem.insert(keys, head);
        let (r, _, _) = decode(&h, dict, false);
        assert!(r.is_err());
        // A field this version does not have, or one outside what was read.
        let py = PythonProcess::for_test(l, h.sym.clone());
        let mut d = Decoder::new(&py, &h.mem, Limits::default());
        let missing = if l.frame_instr_ptr.is_none() { l.frame_instr_ptr } else { l.frame_prev_instr };
        assert!(matches!(d.view(s, &[missing]), Err(Error::Corrupt { .. })));
        let v = d.view(s, &[l.ascii_length]).unwrap();
        assert_eq!(v.i64(l.ascii_length).unwrap(), 3);
        assert!(matches!(v.u32(l.ascii_state), Err(Error::Corrupt { .. })));
    }
}
