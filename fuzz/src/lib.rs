//! Shared by the fuzz targets: valid sample snapshots built in code (no binary corpus
//! is committed), a header writer that makes any body pass the length and checksum
//! checks, and the walk every accepted snapshot must survive.

use pyteleport::process::PyVersion;
use pyteleport::snapshot::{
    CodeInfo, FrameInfo, FrameResume, ObjId, Object, ObjectGraph, ProcessInfo, PyStr, Snapshot, StackSource, ThreadInfo, TypeInfo, Value,
    FORMAT_VERSION, HEADER_LEN, MAGIC,
};

/// `body` behind a header that declares its true length and CRC-32.
pub fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[3, 12, 1, 0]);
    out.extend_from_slice(&[0xcb, 0x0d, 0x0d, 0x0a]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// `Snapshot::from_bytes(data)`: header, checksum, a decode whose allocations are bounded
/// by the body's length, and validation. Must never panic or abort.
pub fn from_bytes(data: &[u8]) -> Option<Snapshot> {
    Snapshot::from_bytes(data).ok()
}

/// The body (bytes after the header) of an encoded snapshot.
pub fn body_of(snap: &Snapshot) -> Vec<u8> {
    snap.to_bytes().expect("a sample snapshot encodes")[HEADER_LEN..].to_vec()
}

/// What `pyteleport inspect` and the restore side do with an accepted snapshot: show
/// it, show every frame as JSON, repr every object; and an accepted snapshot must
/// encode again into bytes that are accepted again.
pub fn exercise(snap: &Snapshot) {
    let text = pyteleport::dump::snapshot_text(snap);
    std::hint::black_box(text);
    let g = &snap.graph;
    let minor = snap.python.minor;
    for f in &snap.thread.frames {
        std::hint::black_box(pyteleport::dump::frame_json(g, f, 0, minor));
    }
    for id in 0..g.objects.len().min(256) {
        std::hint::black_box(pyteleport::repr::repr(g, id as ObjId));
        std::hint::black_box(pyteleport::repr::type_name(g, id as ObjId));
    }
    let again = snap.to_bytes().expect("an accepted snapshot encodes again");
    if let Err(e) = Snapshot::from_bytes(&again) {
        panic!("an accepted snapshot, encoded again, is refused: {e}");
    }
}

fn version(minor: u8) -> PyVersion {
    PyVersion { major: 3, minor, micro: 1, level: 0xf, serial: 0 }
}

fn process() -> ProcessInfo {
    ProcessInfo {
        pid: 1234,
        executable: "/usr/bin/python3".into(),
        argv: vec!["prog.py".into(), "--flag".into()],
        sys_path: vec!["/tmp".into()],
        cwd: "/".into(),
        recursion_limit: 1000,
        stdin_pending: b"typed ahead\n".to_vec(),
    }
}

fn thread(frames: Vec<FrameInfo>, handled_exception: Option<ObjId>) -> ThreadInfo {
    ThreadInfo { tstate: 0x1000, thread_id: 77, native_thread_id: 78, name: Some("MainThread".into()), is_main: true, frames, handled_exception, thread_object: None, held_rlocks: vec![] }
}

fn plan(push: bool) -> FrameResume {
    FrameResume { resume: 4, keep: 1, for_iter: None, exc_value: None, init_self: None, push }
}

/// The smallest valid snapshot: no objects, no frames.
pub fn empty() -> Snapshot {
    Snapshot {
        python: version(12),
        bytecode_magic: [0xcb, 0x0d, 0x0d, 0x0a],
        process: process(),
        graph: ObjectGraph::default(),
        thread: thread(vec![], None),
        main_module: None,
        redirected_streams: vec![],
        resume: vec![],
        interpreter_extras: vec![],
        other_threads: vec![],
    }
}

fn type_node(name: &str, mro: Vec<ObjId>) -> Value {
    Value::Type(TypeInfo {
        name: name.into(),
        qualname: name.into(),
        module: "builtins".into(),
        flags: 0,
        builtin: Some(name.into()),
        mro: mro.clone(),
        bases: mro.into_iter().skip(1).collect(),
        dict_names: vec![],
        dict: None,
        metaclass: None,
        patches: vec![],
    })
}

fn code(name: &str, flags: u32, names: &[&str], kinds: &[u8], consts: Vec<ObjId>) -> Value {
    Value::Code(Box::new(CodeInfo {
        name: name.into(),
        qualname: name.into(),
        filename: "/nonexistent/prog.py".into(),
        first_line: 1,
        flags,
        argcount: 1,
        posonlyargcount: 0,
        kwonlyargcount: 0,
        stacksize: 4,
        nlocals: names.len() as u32,
        localsplus_names: names.iter().map(|s| s.to_string()).collect(),
        localsplus_kinds: kinds.to_vec(),
        code: vec![151, 0, 100, 1, 83, 0],
        linetable: vec![0x80, 0x00],
        exceptiontable: vec![],
        consts,
        names: vec!["print".into()],
    }))
}

/// A snapshot with one object of nearly every kind, sharing and a cycle, two frames (a
/// function and a module body) and a suspended generator.
pub fn rich(minor: u8) -> Snapshot {
    // Ids of the nodes below, in order.
    const TYPE: ObjId = 0;
    const STR: ObjId = 1;
    const INT: ObjId = 2;
    const OBJECT: ObjId = 3;
    const NAME: ObjId = 4;
    const FORTY_TWO: ObjId = 5;
    const CODE_F: ObjId = 6;
    const CODE_MOD: ObjId = 7;
    const FUNC: ObjId = 8;
    const CELL: ObjId = 9;
    const LIST: ObjId = 10;
    const GLOBALS: ObjId = 11;
    const TUPLE: ObjId = 12;
    const MAIN: ObjId = 13;
    const INSTANCE: ObjId = 14;
    const EXC: ObjId = 15;
    let t = |ty: ObjId, addr: u64, value: Value| Object { addr, type_id: Some(ty), value };
    let locals_kinds: &[u8] = if minor >= 13 { &[0x20, 0x20, 0x40, 0x10] } else { &[0x20, 0x20, 0x40, 0x20] };
    let gen_frame = FrameInfo {
        addr: 0x9000,
        code: CODE_F,
        owner: 1,
        lasti: 2,
        instr_start: 2,
        line: Some(3),
        localsplus: vec![Some(FORTY_TWO), None, Some(CELL), None],
        stack: vec![],
        stack_from: StackSource::Stacktop,
        globals: Some(GLOBALS),
        locals_mapping: None,
        function: Some(FUNC),
        generator: Some(40),
        through_init_cleanup: false,
    };
    let objects = vec![
        t(TYPE, 0x100, type_node("type", vec![TYPE, OBJECT])),
        t(TYPE, 0x110, type_node("str", vec![STR, OBJECT])),
        t(TYPE, 0x120, type_node("int", vec![INT, OBJECT])),
        t(TYPE, 0x130, type_node("object", vec![OBJECT])),
        t(STR, 0x200, Value::Str(PyStr::Text("f".into()))),
        t(INT, 0x210, Value::Int { negative: false, digits: vec![42] }),
        Object { addr: 0x220, type_id: None, value: code("f", 0x23, &["x", "y", "c", "h"], locals_kinds, vec![FORTY_TWO, NAME]) },
        Object { addr: 0x230, type_id: None, value: code("<module>", 0, &[], &[], vec![CODE_F]) },
        Object {
            addr: 0x240,
            type_id: None,
            value: Value::Function {
                code: CODE_F,
                name: NAME,
                qualname: NAME,
                module_name: Some("__main__".into()),
                globals_module: Some("__main__".into()),
                globals: Some(GLOBALS),
                defaults: Some(TUPLE),
                kwdefaults: None,
                closure: None,
                dict: None,
                annotations: None,
            },
        },
        Object { addr: 0x250, type_id: None, value: Value::Cell(Some(FORTY_TWO)) },
        Object { addr: 0x260, type_id: None, value: Value::List(vec![FORTY_TWO, NAME, LIST]) },
        Object { addr: 0x270, type_id: None, value: Value::Dict(vec![(NAME, FUNC), (NAME, LIST)]) },
        Object { addr: 0x280, type_id: None, value: Value::Tuple(vec![FORTY_TWO, NAME]) },
        Object {
            addr: 0x290,
            type_id: None,
            value: Value::Module {
                name: "__main__".into(),
                file: Some("/nonexistent/prog.py".into()),
                spec: false,
                origin: None,
                has_location: false,
                dict: Some(GLOBALS),
                patches: vec![("f".into(), FUNC)],
            },
        },
        Object {
            addr: 0x2a0,
            type_id: Some(OBJECT),
            value: Value::Instance {
                dict: Some(GLOBALS),
                slots: vec![("s".into(), Some(FORTY_TWO)), ("t".into(), None)],
                base: Some(Box::new(Value::Int { negative: true, digits: vec![1, 2] })),
            },
        },
        Object {
            addr: 0x2b0,
            type_id: None,
            value: Value::Exception { args: Some(TUPLE), dict: None, context: None, cause: Some(EXC), suppress_context: true, notes: None },
        },
        // 16..
        Object { addr: 0x300, type_id: Some(OBJECT), value: Value::Float(-0.0) },
        Object { addr: 0x310, type_id: None, value: Value::Complex(1.5, f64::NAN) },
        Object { addr: 0x320, type_id: None, value: Value::Bytes(b"a'b\"\\\x00\xff".to_vec()) },
        Object { addr: 0x330, type_id: None, value: Value::ByteArray(vec![1, 2, 3]) },
        Object { addr: 0x340, type_id: Some(STR), value: Value::Str(PyStr::CodePoints(vec![0x61, 0xd800, 0x10ffff, 0x7f, 0x2028])) },
        Object { addr: 0x350, type_id: None, value: Value::Set(vec![FORTY_TWO]) },
        Object { addr: 0x360, type_id: None, value: Value::FrozenSet(vec![]) },
        Object { addr: 0x370, type_id: None, value: Value::Bool(true) },
        Object { addr: 0x380, type_id: None, value: Value::None },
        Object { addr: 0x390, type_id: None, value: Value::Ellipsis },
        Object { addr: 0x3a0, type_id: None, value: Value::NotImplemented },
        Object { addr: 0x3b0, type_id: None, value: Value::Method { func: FUNC, self_: INSTANCE } },
        Object { addr: 0x3c0, type_id: None, value: Value::BuiltinFunction { name: "len".into(), self_: None, module: Some("builtins".into()) } },
        Object { addr: 0x3d0, type_id: None, value: Value::Range { start: FORTY_TWO, stop: FORTY_TWO, step: FORTY_TWO } },
        Object {
            addr: 0x3e0,
            type_id: None,
            value: Value::Rebuilt { type_name: "slice".into(), args: vec![Some(FORTY_TWO), None, None], dict: None },
        },
        Object { addr: 0x3f0, type_id: None, value: Value::RangeIter { start: 0, step: 2, len: 5, index: 1 } },
        Object { addr: 0x400, type_id: None, value: Value::SeqIter { seq: Some(LIST), index: 1 } },
        Object { addr: 0x410, type_id: None, value: Value::Enumerate { iter: 32, index: 3, long_index: None } },
        Object { addr: 0x420, type_id: None, value: Value::Zip { iters: TUPLE, strict: true } },
        Object { addr: 0x430, type_id: None, value: Value::DictIter { dict: Some(GLOBALS), pos: 0, len: 2 } },
        Object { addr: 0x440, type_id: None, value: Value::Descriptor { owner: STR, name: "upper".into() } },
        Object {
            addr: 0x450,
            type_id: None,
            value: Value::Reduce { callable: FUNC, args: TUPLE, state: Some(GLOBALS), listitems: None, dictitems: None },
        },
        Object { addr: 0x460, type_id: None, value: Value::Global { module: "random".into(), name: "_inst".into(), state: Some(TUPLE) } },
        Object { addr: 0x470, type_id: None, value: Value::Stdio("stdout".into()) },
        // 40: the generator whose frame is `gen_frame`.
        Object {
            addr: 0x480,
            type_id: None,
            value: Value::Generator {
                kind: "generator".into(),
                name: NAME,
                qualname: NAME,
                state: -1,
                python_state: "GEN_SUSPENDED".into(),
                frame: Some(Box::new(gen_frame.clone())),
                exc_state: None,
            },
        },
        Object { addr: 0x490, type_id: Some(OBJECT), value: Value::Object },
        Object { addr: 0x4a0, type_id: None, value: Value::Opaque },
        Object { addr: 0x4b0, type_id: None, value: Value::Unread("depth limit".into()) },
    ];
    let mut graph = ObjectGraph::default();
    graph.objects = objects;
    let func_frame =
        FrameInfo { addr: 0x8000, stack: vec![Some(LIST), None, Some(40)], stack_from: StackSource::Static, generator: None, ..gen_frame };
    let module_frame = FrameInfo {
        addr: 0x7000,
        code: CODE_MOD,
        owner: 0,
        lasti: -1,
        instr_start: 0,
        line: None,
        localsplus: vec![],
        stack: vec![Some(FUNC)],
        stack_from: StackSource::Unknown,
        globals: Some(GLOBALS),
        locals_mapping: Some(GLOBALS),
        function: None,
        generator: None,
        through_init_cleanup: minor >= 13,
    };
    Snapshot {
        python: version(minor),
        bytecode_magic: [0xcb, 0x0d, 0x0d, 0x0a],
        process: process(),
        graph,
        thread: thread(vec![func_frame, module_frame], Some(EXC)),
        main_module: Some(MAIN),
        redirected_streams: vec![("stdout".into(), 39)],
        resume: vec![FrameResume { exc_value: Some(EXC), init_self: Some(INSTANCE), for_iter: Some(2), ..plan(true) }, plan(false)],
        interpreter_extras: vec![],
        other_threads: vec![],
    }
}

/// Every sample; each must be accepted as it is.
pub fn samples() -> Vec<Snapshot> {
    vec![empty(), rich(11), rich(12), rich(13)]
}

/// The body a `snapshot_body` input stands for. Its first byte chooses the form of the
/// rest: even, an edit script (see [`edit`]) applied to the body of sample
/// `first / 2 % samples().len()`; odd, the body itself.
pub fn body_from_input(data: &[u8]) -> Vec<u8> {
    static BODIES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let Some((&first, rest)) = data.split_first() else { return Vec::new() };
    if first % 2 == 1 {
        return rest.to_vec();
    }
    let bodies = BODIES.get_or_init(|| samples().iter().map(body_of).collect());
    let mut body = bodies[(first / 2) as usize % bodies.len()].clone();
    edit(&mut body, rest);
    body
}

/// Apply an edit script to `body`: 4 bytes an edit (kind, position low, position high,
/// value), the position taken modulo the current length. The kinds overwrite, insert,
/// remove, xor, fill 8 bytes (long varints, huge lengths) and truncate.
pub fn edit(body: &mut Vec<u8>, script: &[u8]) {
    for e in script.chunks_exact(4).take(64) {
        let pos = u16::from_le_bytes([e[1], e[2]]) as usize % (body.len() + 1);
        let v = e[3];
        match e[0] % 6 {
            0 if pos < body.len() => body[pos] = v,
            1 => body.insert(pos, v),
            2 if pos < body.len() => {
                body.remove(pos);
            }
            3 if pos < body.len() => body[pos] ^= v,
            4 => {
                let end = (pos + 8).min(body.len());
                body[pos..end].fill(v);
            }
            5 => body.truncate(pos),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_accepted_and_survive_the_walk() {
        for s in samples() {
            let snap = Snapshot::from_bytes(&with_header(&body_of(&s))).unwrap();
            exercise(&snap);
        }
    }
}
