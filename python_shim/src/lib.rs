//! The native half of the `pyteleport` package: decoding snapshots into Python data and
//! re-entering frames. Frame re-entry writes a generator's interpreter frame directly,
//! with the same per-version layout tables the supervisor reads with.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use pyteleport::layouts::{self, Layout};
use pyteleport::snapshot::report::{self, Readiness, Reply, Report};
use pyteleport::snapshot::{reducers::Reducer, FrameInfo, Header, ObjId, PyStr, Snapshot, Value, HEADER_LEN};

/// Records: the one definition of what the restore engine reads. Each is a frozen class
/// whose fields are read-only attributes (struct members: as fast as a tuple index), with
/// `kind` (what restore.py dispatches on) and `_fields` on the class.
macro_rules! records {
    ($( $(#[doc = $doc:literal])* $name:ident $kind:literal { $($field:ident),* $(,)? } )*) => {
        $(
            $(#[doc = $doc])*
            #[pyclass(frozen, module = "pyteleport._native")]
            pub struct $name { $( #[pyo3(get)] $field: PyObject, )* }

            #[pymethods]
            impl $name {
                #[classattr]
                fn kind() -> &'static str {
                    $kind
                }
                #[classattr]
                fn _fields(py: Python<'_>) -> PyResult<Py<PyTuple>> {
                    let names: &[&str] = &[$(stringify!($field)),*];
                    Ok(PyTuple::new(py, names)?.unbind())
                }
                fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                    let fields: Vec<String> = vec![$(format!("{}={}", stringify!($field), self.$field.bind(py).repr()?)),*];
                    let _ = py;
                    Ok(format!("{}({})", stringify!($name), fields.join(", ")))
                }
            }
        )*

        fn add_records(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_class::<$name>()?; )*
            Ok(())
        }
    };
}

records! {
    /// A snapshot object: its value record, the id of its type's node, its address in the
    /// original process.
    Node "node" { value, type_id, addr }
    /// Stands for a scalar the native module already built (`Snapshot.ready` holds it).
    ReadyValue "ready" {}
    NoneValue "none" {}
    EllipsisValue "ellipsis" {}
    NotImplementedValue "notimplemented" {}
    BoolValue "bool" { value }
    IntValue "int" { value }
    FloatValue "float" { value }
    ComplexValue "complex" { real, imag }
    StrValue "str" { value }
    BytesValue "bytes" { value }
    ByteArrayValue "bytearray" { value }
    /// `items`: object ids.
    TupleValue "tuple" { items }
    ListValue "list" { items }
    SetValue "set" { items }
    FrozenSetValue "frozenset" { items }
    /// `items`: key and value ids alternating, in order.
    DictValue "dict" { items }
    CellValue "cell" { contents }
    /// `patches`: (name, id) of what the program rebound in the module.
    ModuleValue "module" { name, dict, patches }
    /// `dict` None: an importable class, found by module and qualname; `patches`: (name,
    /// id) of the state such a class of an installed package holds.
    TypeValue "type" { module, qualname, name, dict, bases, metaclass, builtin, mro, patches }
    FunctionValue "function" { code, name, qualname, module_name, globals_module, globals, defaults, kwdefaults, closure, dict }
    CodeValue "code" { name, qualname, filename, first_line, flags, argcount, posonlyargcount, kwonlyargcount, stacksize, nlocals,
                       localsplus_names, localsplus_kinds, code, linetable, exceptiontable, consts, names }
    MethodValue "method" { func, self_ }
    BuiltinValue "builtin" { name, self_, module }
    /// `frame`: a Frame record, None when not started or finished.
    GeneratorValue "generator" { gen_kind, name, qualname, state, frame, exc_state }
    RangeValue "range" { start, stop, step }
    /// `args`: ids (None where absent).
    RebuiltValue "rebuilt" { type_name, args, dict }
    RangeIterValue "rangeiter" { start, step, len, index }
    SeqIterValue "seqiter" { seq, index }
    EnumerateValue "enumerate" { iter, index, long_index }
    ZipValue "zip" { iters, strict }
    DictIterValue "dictiter" { dict, pos, len }
    ExceptionValue "exception" { args, dict, context, cause, suppress_context, notes }
    /// `slots`: (name, id or None); `base`: the builtin base's value record, or None.
    InstanceValue "instance" { dict, slots, base }
    ObjectValue "object" {}
    StdioValue "stdio" { name }
    GlobalValue "global" { module, name, state }
    ReduceValue "reduce" { callable, args, state, listitems, dictitems }
    DescriptorValue "descriptor" { owner, name }
    OpaqueValue "opaque" {}
    UnreadValue "unread" { reason }
    /// A captured frame: `localsplus` and `stack` hold ids, None for an empty slot.
    Frame "frame" { code, lasti, line, owner, localsplus, stack, globals, locals_mapping, function, generator, instr_start }
    /// How to resume one frame (`pyteleport::snapshot::FrameResume`).
    Plan "plan" { resume, keep, for_iter, exc_value, init_self, push }
    /// A decoded snapshot. `ready`: one entry per object, built or the `unset` marker
    /// (None when no marker was given); `resume`: one Plan per frame.
    /// A thread besides the snapshot's own: its frames and plans, whether it is the
    /// main thread, its `threading.Thread` object and the RLocks it takes again.
    ThreadRecord "thread" { frames, resume, is_main, thread_object, held_rlocks, name, thread_id }
    Decoded "snapshot" { objects, ready, frames, resume, is_main, thread_object, held_rlocks, thread_id, other_threads, main_module, redirected_streams, interpreter_extras, argv, sys_path,
                         recursion_limit, stdin_pending, cwd, pid, python }
    /// The fixed header at the start of a snapshot file.
    SnapshotHeader "header" { format_version, python, bytecode_magic, body_len, crc32 }
    /// Report lines (supervisor → shim), see `pyteleport::snapshot::report`.
    ReduceReport "reduce" { addrs }
    SettleReport "settle" {}
    ErrorReport "error" { message }
    SavedReport "saved" { path }
    StartedReport "started" { pid }
    ExitReport "exit" { code }
}

/// A record from its fields (converted), e.g. `rec!(py, RangeValue { start: 1, ... })`.
macro_rules! rec {
    ($py:expr, $name:ident { $($field:ident : $val:expr),* $(,)? }) => {
        Py::new($py, $name { $($field: ($val).into_py_any($py)?),* })?.into_any()
    };
}

fn ids(py: Python<'_>, v: &[ObjId]) -> PyResult<PyObject> {
    Ok(PyList::new(py, v.iter().copied())?.into_any().unbind())
}

fn py_str(py: Python<'_>, s: &PyStr) -> PyResult<PyObject> {
    match s {
        PyStr::Text(t) => Ok(t.into_pyobject(py)?.into_any().unbind()),
        // SAFETY: `cps` is a live slice of `len` UCS-4 code points that CPython copies;
        // the result is a new reference (or NULL with an exception set), owned once.
        PyStr::CodePoints(cps) => unsafe {
            // Lone surrogates cannot be a Rust String: build the str from UCS-4 data.
            let p = ffi::PyUnicode_FromKindAndData(ffi::PyUnicode_4BYTE_KIND as i32, cps.as_ptr() as *const _, cps.len() as ffi::Py_ssize_t);
            Bound::from_owned_ptr_or_err(py, p).map(|b| b.unbind())
        },
    }
}

fn py_int(py: Python<'_>, negative: bool, digits: &[u32]) -> PyResult<PyObject> {
    let v = pyteleport::repr::int_value(negative, digits);
    if let Ok(small) = i64::try_from(&v) {
        return Ok(small.into_pyobject(py)?.into_any().unbind());
    }
    let bytes = v.to_signed_bytes_le();
    let int = py.get_type::<pyo3::types::PyInt>();
    let kwargs = PyDict::new(py);
    kwargs.set_item("signed", true)?;
    Ok(int.call_method("from_bytes", (PyBytes::new(py, &bytes), "little"), Some(&kwargs))?.unbind())
}

fn bytes(py: Python<'_>, b: &[u8]) -> PyObject {
    PyBytes::new(py, b).into_any().unbind()
}

fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<PyObject> {
    Ok(match v {
        Value::None => rec!(py, NoneValue {}),
        Value::Ellipsis => rec!(py, EllipsisValue {}),
        Value::NotImplemented => rec!(py, NotImplementedValue {}),
        Value::Bool(x) => rec!(py, BoolValue { value: *x }),
        Value::Int { negative, digits } => rec!(py, IntValue { value: py_int(py, *negative, digits)? }),
        Value::Float(x) => rec!(py, FloatValue { value: *x }),
        Value::Complex(re, im) => rec!(py, ComplexValue { real: *re, imag: *im }),
        Value::Str(x) => rec!(py, StrValue { value: py_str(py, x)? }),
        Value::Bytes(x) => rec!(py, BytesValue { value: bytes(py, x) }),
        Value::ByteArray(x) => rec!(py, ByteArrayValue { value: bytes(py, x) }),
        Value::Tuple(x) => rec!(py, TupleValue { items: ids(py, x)? }),
        Value::List(x) => rec!(py, ListValue { items: ids(py, x)? }),
        Value::Set(x) => rec!(py, SetValue { items: ids(py, x)? }),
        Value::FrozenSet(x) => rec!(py, FrozenSetValue { items: ids(py, x)? }),
        Value::Dict(items) => {
            let flat: Vec<ObjId> = items.iter().flat_map(|(k, v)| [*k, *v]).collect();
            rec!(py, DictValue { items: ids(py, &flat)? })
        }
        Value::Cell(c) => rec!(py, CellValue { contents: *c }),
        Value::Module { name, dict, patches, .. } => {
            let p: Vec<PyObject> = patches.iter().map(|(k, v)| (k.as_str(), *v).into_py_any(py)).collect::<PyResult<_>>()?;
            rec!(py, ModuleValue { name: name.as_str(), dict: *dict, patches: PyList::new(py, p)? })
        }
        Value::Type(t) => rec!(
            py,
            TypeValue {
                patches: PyList::new(py, t.patches.iter().map(|(k, v)| (k.as_str(), *v).into_py_any(py)).collect::<PyResult<Vec<_>>>()?)?,
                module: t.module.as_str(),
                qualname: t.qualname.as_str(),
                name: t.name.as_str(),
                dict: t.dict,
                bases: ids(py, &t.bases)?,
                metaclass: t.metaclass,
                builtin: t.builtin.as_deref(),
                mro: ids(py, &t.mro)?,
            }
        ),
        Value::Function { code, name, qualname, module_name, globals_module, globals, defaults, kwdefaults, closure, dict, .. } => rec!(
            py,
            FunctionValue {
                code: *code,
                name: *name,
                qualname: *qualname,
                module_name: module_name.as_deref(),
                globals_module: globals_module.as_deref(),
                globals: *globals,
                defaults: *defaults,
                kwdefaults: *kwdefaults,
                closure: *closure,
                dict: *dict,
            }
        ),
        Value::Code(c) => rec!(
            py,
            CodeValue {
                name: c.name.as_str(),
                qualname: c.qualname.as_str(),
                filename: c.filename.as_str(),
                first_line: c.first_line,
                flags: c.flags,
                argcount: c.argcount,
                posonlyargcount: c.posonlyargcount,
                kwonlyargcount: c.kwonlyargcount,
                stacksize: c.stacksize,
                nlocals: c.nlocals,
                localsplus_names: c.localsplus_names.clone(),
                localsplus_kinds: bytes(py, &c.localsplus_kinds),
                code: bytes(py, &c.code),
                linetable: bytes(py, &c.linetable),
                exceptiontable: bytes(py, &c.exceptiontable),
                consts: ids(py, &c.consts)?,
                names: c.names.clone(),
            }
        ),
        Value::Method { func, self_ } => rec!(py, MethodValue { func: *func, self_: *self_ }),
        Value::BuiltinFunction { name, self_, module } => rec!(py, BuiltinValue { name: name.as_str(), self_: *self_, module: module.as_deref() }),
        Value::Generator { kind, name, qualname, state, frame, exc_state, .. } => {
            let f = match frame {
                Some(f) => frame_to_py(py, f)?,
                None => py.None(),
            };
            rec!(
                py,
                GeneratorValue { gen_kind: kind.as_str(), name: *name, qualname: *qualname, state: *state as i64, frame: f, exc_state: *exc_state }
            )
        }
        Value::Range { start, stop, step } => rec!(py, RangeValue { start: *start, stop: *stop, step: *step }),
        Value::Rebuilt { type_name, args, dict } => rec!(py, RebuiltValue { type_name: type_name.as_str(), args: args.clone(), dict: *dict }),
        Value::RangeIter { start, step, len, index } => rec!(py, RangeIterValue { start: *start, step: *step, len: *len, index: *index }),
        Value::SeqIter { seq, index } => rec!(py, SeqIterValue { seq: *seq, index: *index }),
        Value::Enumerate { iter, index, long_index } => rec!(py, EnumerateValue { iter: *iter, index: *index, long_index: *long_index }),
        Value::Zip { iters, strict } => rec!(py, ZipValue { iters: *iters, strict: *strict }),
        Value::DictIter { dict, pos, len } => rec!(py, DictIterValue { dict: *dict, pos: *pos, len: *len }),
        Value::Exception { args, dict, context, cause, suppress_context, notes } => rec!(
            py,
            ExceptionValue { args: *args, dict: *dict, context: *context, cause: *cause, suppress_context: *suppress_context, notes: *notes }
        ),
        Value::Instance { dict, slots, base } => {
            let sl: Vec<PyObject> = slots.iter().map(|(k, v)| (k.as_str(), *v).into_py_any(py)).collect::<PyResult<_>>()?;
            let base = match base {
                Some(b) => value_to_py(py, b)?,
                None => py.None(),
            };
            rec!(py, InstanceValue { dict: *dict, slots: PyList::new(py, sl)?, base: base })
        }
        Value::Object => rec!(py, ObjectValue {}),
        Value::Stdio(name) => rec!(py, StdioValue { name: name.as_str() }),
        Value::Global { module, name, state } => rec!(py, GlobalValue { module: module.as_str(), name: name.as_str(), state: *state }),
        Value::Reduce { callable, args, state, listitems, dictitems } => {
            rec!(py, ReduceValue { callable: *callable, args: *args, state: *state, listitems: *listitems, dictitems: *dictitems })
        }
        Value::Descriptor { owner, name } => rec!(py, DescriptorValue { owner: *owner, name: name.as_str() }),
        Value::Opaque => rec!(py, OpaqueValue {}),
        Value::Unread(m) => rec!(py, UnreadValue { reason: m.as_str() }),
    })
}

fn frame_to_py(py: Python<'_>, f: &FrameInfo) -> PyResult<PyObject> {
    Ok(rec!(
        py,
        Frame {
            code: f.code,
            lasti: f.lasti,
            line: f.line,
            owner: f.owner,
            localsplus: f.localsplus.clone(),
            stack: f.stack.clone(),
            globals: f.globals,
            locals_mapping: f.locals_mapping,
            function: f.function,
            generator: f.generator,
            // A suspended generator resumes after the instruction it stopped in.
            instr_start: f.instr_start,
        }
    ))
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::None | Value::Bool(_) | Value::Int { .. } | Value::Float(_) | Value::Str(_) | Value::Bytes(_))
}

/// Objects that need no Python-level work: scalars, and containers holding only
/// scalars (a list of a million floats). Built here; `unset` marks the others.
fn ready_objects(py: Python<'_>, snap: &Snapshot, unset: &Bound<'_, PyAny>) -> PyResult<Vec<PyObject>> {
    let objs = &snap.graph.objects;
    let mut ready: Vec<Option<PyObject>> = Vec::with_capacity(objs.len());
    for o in objs {
        ready.push(match &o.value {
            Value::None => Some(py.None()),
            Value::Bool(b) => Some(b.into_pyobject(py)?.to_owned().into_any().unbind()),
            Value::Int { negative, digits } => Some(py_int(py, *negative, digits)?),
            Value::Float(x) => Some(x.into_pyobject(py)?.into_any().unbind()),
            Value::Str(s) => Some(py_str(py, s)?),
            Value::Bytes(b) => Some(PyBytes::new(py, b).into_any().unbind()),
            _ => None,
        });
    }
    let scalar = |ready: &Vec<Option<PyObject>>, ids: &[ObjId]| {
        ids.iter().all(|&i| objs.get(i as usize).is_some_and(|o| is_scalar(&o.value)) && ready[i as usize].is_some())
    };
    for (i, o) in objs.iter().enumerate() {
        let built: Option<PyObject> = match &o.value {
            Value::Tuple(ids) if scalar(&ready, ids) => {
                Some(PyTuple::new(py, ids.iter().map(|&x| ready[x as usize].as_ref().map(|r| r.clone_ref(py))))?.into_any().unbind())
            }
            Value::List(ids) if scalar(&ready, ids) => {
                Some(PyList::new(py, ids.iter().map(|&x| ready[x as usize].as_ref().map(|r| r.clone_ref(py))))?.into_any().unbind())
            }
            Value::Dict(items) if items.iter().all(|(k, v)| scalar(&ready, &[*k, *v])) => {
                let d = PyDict::new(py);
                for (k, v) in items {
                    d.set_item(ready[*k as usize].as_ref().map(|r| r.clone_ref(py)), ready[*v as usize].as_ref().map(|r| r.clone_ref(py)))?;
                }
                Some(d.into_any().unbind())
            }
            _ => None,
        };
        if built.is_some() {
            ready[i] = built;
        }
    }
    Ok(ready.into_iter().map(|r| r.unwrap_or_else(|| unset.clone().unbind())).collect())
}

/// The bytes of a bytes-like object, without a copy. SAFETY (callers): nothing may run
/// Python code that could resize the buffer while the slice is used.
unsafe fn buffer_bytes(data: &pyo3::buffer::PyBuffer<u8>) -> PyResult<&[u8]> {
    if !data.is_c_contiguous() {
        return Err(PyValueError::new_err("the snapshot buffer is not contiguous"));
    }
    Ok(std::slice::from_raw_parts(data.buf_ptr() as *const u8, data.len_bytes()))
}

/// Check and decode a snapshot into records for the restore engine (a `Decoded`). With
/// `unset`, `ready` holds one entry per object, already built, or `unset`.
#[pyfunction]
#[pyo3(signature = (data, unset=None))]
fn decode_snapshot(py: Python<'_>, data: pyo3::buffer::PyBuffer<u8>, unset: Option<Bound<'_, PyAny>>) -> PyResult<PyObject> {
    // bytes or a bytearray the snapshot was read into (no copy of a 100 MB state).
    // SAFETY: held by `data` while we read it; nothing else runs Python code (which could
    // resize it) during the decode.
    let data = unsafe { buffer_bytes(&data)? };
    let snap = Snapshot::from_bytes(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let running = py.version_info();
    if (snap.python.major, snap.python.minor) != (running.major, running.minor) {
        return Err(PyValueError::new_err(format!(
            "snapshot was taken on CPython {}.{}, this is CPython {}.{}",
            snap.python.major, snap.python.minor, running.major, running.minor
        )));
    }
    let ready = match &unset {
        Some(u) => Some(ready_objects(py, &snap, u)?),
        None => None,
    };
    // One node stands for every built scalar (a million floats make no million nodes).
    let ready_node: PyObject = rec!(py, Node { value: rec!(py, ReadyValue {}), type_id: py.None(), addr: 0u64 });
    let objects: Vec<PyObject> = snap
        .graph
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            // Built scalars need no node; built containers keep theirs, which the engine
            // reads structurally (class namespaces, __main__'s dict).
            let is_ready = match (&ready, &unset) {
                (Some(r), Some(u)) => !r[i].bind(py).is(u) && is_scalar(&o.value),
                _ => false,
            };
            if is_ready {
                return Ok(ready_node.clone_ref(py));
            }
            Ok(rec!(py, Node { value: value_to_py(py, &o.value)?, type_id: o.type_id, addr: o.addr }))
        })
        .collect::<PyResult<_>>()?;
    let plans = |plans: &[pyteleport::snapshot::FrameResume]| -> PyResult<Vec<PyObject>> {
        plans
            .iter()
            .map(|r| {
                Ok(rec!(
                    py,
                    Plan { resume: r.resume, keep: r.keep, for_iter: r.for_iter, exc_value: r.exc_value, init_self: r.init_self, push: r.push }
                ))
            })
            .collect()
    };
    let frames: Vec<PyObject> = snap.thread.frames.iter().map(|f| frame_to_py(py, f)).collect::<PyResult<_>>()?;
    let resume = plans(&snap.resume)?;
    let other_threads: Vec<PyObject> = snap
        .other_threads
        .iter()
        .map(|o| {
            let frames: Vec<PyObject> = o.thread.frames.iter().map(|f| frame_to_py(py, f)).collect::<PyResult<_>>()?;
            Ok(rec!(
                py,
                ThreadRecord {
                    frames: PyList::new(py, frames)?,
                    resume: PyList::new(py, plans(&o.resume)?)?,
                    is_main: o.thread.is_main,
                    thread_object: o.thread.thread_object,
                    held_rlocks: o.thread.held_rlocks.clone(),
                    name: o.thread.name.clone(),
                    thread_id: o.thread.thread_id,
                }
            ))
        })
        .collect::<PyResult<_>>()?;
    let ready = match ready {
        Some(r) => PyList::new(py, r)?.into_any().unbind(),
        None => py.None(),
    };
    Ok(rec!(
        py,
        Decoded {
            objects: PyList::new(py, objects)?,
            ready: ready,
            frames: PyList::new(py, frames)?,
            resume: PyList::new(py, resume)?,
            is_main: snap.thread.is_main,
            thread_object: snap.thread.thread_object,
            held_rlocks: snap.thread.held_rlocks.clone(),
            thread_id: snap.thread.thread_id,
            other_threads: PyList::new(py, other_threads)?,
            main_module: snap.main_module,
            redirected_streams: snap.redirected_streams.clone(),
            interpreter_extras: snap.interpreter_extras.clone(),
            argv: snap.process.argv.clone(),
            sys_path: snap.process.sys_path.clone(),
            recursion_limit: snap.process.recursion_limit,
            stdin_pending: bytes(py, &snap.process.stdin_pending),
            cwd: snap.process.cwd.clone(),
            pid: snap.process.pid,
            python: format!("{}", snap.python),
        }
    ))
}

/// The header at the start of `data` (at least `HEADER_LEN` bytes): ValueError when it is
/// not a snapshot header this pyteleport reads.
#[pyfunction]
fn parse_header(py: Python<'_>, data: pyo3::buffer::PyBuffer<u8>) -> PyResult<PyObject> {
    // SAFETY: only read here, no Python code runs meanwhile.
    let raw = unsafe { buffer_bytes(&data)? };
    let h = Header::parse(raw).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(rec!(
        py,
        SnapshotHeader {
            format_version: h.format_version,
            python: h.python,
            bytecode_magic: bytes(py, &h.bytecode_magic),
            body_len: h.body_len,
            crc32: h.crc32,
        }
    ))
}

/// One report line from the supervisor as a record (`ReduceReport`, `ErrorReport`,
/// `SavedReport`, `StartedReport`, `ExitReport`), or None for a line that is none of them.
#[pyfunction]
fn decode_report(py: Python<'_>, line: &str) -> PyResult<PyObject> {
    Ok(match Report::decode(line) {
        Some(Report::Reduce(addrs)) => rec!(py, ReduceReport { addrs: addrs }),
        Some(Report::Settle) => rec!(py, SettleReport {}),
        Some(Report::Error(m)) => rec!(py, ErrorReport { message: m }),
        Some(Report::Saved(p)) => rec!(py, SavedReport { path: p }),
        Some(Report::Started(pid)) => rec!(py, StartedReport { pid: pid }),
        Some(Report::Exit(code)) => rec!(py, ExitReport { code: code }),
        None => py.None(),
    })
}

/// One line from descriptor `fd` (without its newline; empty at end of file), read
/// *holding the GIL*: while the supervisor reads this process, no other thread may run
/// Python code.
#[pyfunction]
fn read_line_holding_gil(fd: i32) -> PyResult<String> {
    use std::io::Read;
    // SAFETY: borrows a descriptor the caller owns for the length of this call; never
    // closed here (ManuallyDrop).
    let mut file = std::mem::ManuallyDrop::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Write all of `data` to descriptor `fd`, holding the GIL (see `read_line_holding_gil`).
#[pyfunction]
fn write_holding_gil(fd: i32, data: &[u8]) -> PyResult<()> {
    use std::io::Write;
    // SAFETY: as in `read_line_holding_gil`.
    let mut file = std::mem::ManuallyDrop::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    Ok(file.write_all(data)?)
}

/// Release the GIL for `seconds`, letting the other threads run.
#[pyfunction]
fn let_other_threads_run(py: Python<'_>, seconds: f64) {
    py.allow_threads(|| std::thread::sleep(std::time::Duration::from_secs_f64(seconds.clamp(0.0, 1.0))));
}

/// The reply line (no newline) to a `reduce` report: the address of the list of reduce
/// tuples, or with `error`, why they could not be made.
#[pyfunction]
#[pyo3(signature = (addr=None, error=None))]
fn encode_reply(addr: Option<u64>, error: Option<String>) -> PyResult<String> {
    match (addr, error) {
        (Some(a), None) => Ok(Reply::Reduced(a).encode()),
        (None, Some(e)) => Ok(Reply::Error(e).encode()),
        _ => Err(PyValueError::new_err("a reply is an address or an error")),
    }
}

/// What a restore started by `pyteleport attach` writes on its ready pipe: ready (no
/// `error`), or why it cannot run.
#[pyfunction]
#[pyo3(signature = (error=None))]
fn encode_readiness(py: Python<'_>, error: Option<String>) -> PyObject {
    let r = match error {
        None => Readiness::Ready,
        Some(e) => Readiness::Failed(e),
    };
    bytes(py, &r.encode())
}

/// Parse an exception table as the Rust reader does: (start, end, target, depth, lasti)
/// per entry, in code units.
#[pyfunction]
fn parse_exception_table(data: &[u8]) -> Vec<(u32, u32, u32, u32, bool)> {
    pyteleport::bytecode::parse_exception_table(data).into_iter().map(|e| (e.start, e.end, e.target, e.depth, e.lasti)).collect()
}

/// The exception table with every offset moved by `units` (code put in front).
#[pyfunction]
fn shift_exception_table(py: Python<'_>, data: &[u8], units: u32) -> PyObject {
    bytes(py, &pyteleport::bytecode::shift_exception_table(data, units))
}

/// Tests only: `data` (a valid snapshot) with one more object, a list naming an object id
/// past the end, under a valid checksum.
#[pyfunction]
fn _test_snapshot_with_bad_id(py: Python<'_>, data: &[u8]) -> PyResult<PyObject> {
    let mut snap = Snapshot::from_bytes(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let n = snap.graph.objects.len() as ObjId;
    snap.graph.objects.push(pyteleport::snapshot::Object { addr: 16, type_id: None, value: Value::List(vec![n + 1000]) });
    let out = snap.to_bytes().map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(bytes(py, &out))
}

/// The generator-state numbers of this interpreter (`gi_frame_state`) and their names.
fn frame_states(py: Python<'_>) -> PyResult<PyObject> {
    let l = running_layout(py)?;
    let d = PyDict::new(py);
    for (v, name) in
        [(Some(l.frame_created), "created"), (Some(l.frame_suspended), "suspended"), (l.frame_suspended_yield_from, "suspended_yield_from")]
    {
        if let Some(v) = v {
            d.set_item(v, name)?;
        }
    }
    Ok(d.into_any().unbind())
}

fn running_layout(py: Python<'_>) -> PyResult<&'static Layout> {
    let v = py.version_info();
    let l = layouts::for_version(v.major, v.minor)
        .ok_or_else(|| PyRuntimeError::new_err(format!("pyteleport has no layout for CPython {}.{}", v.major, v.minor)))?;
    if !l.movable {
        return Err(PyRuntimeError::new_err(format!("CPython {}.{} can be read (dump) but not yet moved", v.major, v.minor)));
    }
    Ok(l)
}

/// Put a freshly created generator's frame into the state of a captured frame: locals,
/// value stack, next instruction, handled exception, and (module bodies) f_locals.
/// `null` stands for an empty (NULL) slot. The generator must come from a code object
/// whose frame has room for `localsplus` and `stack`.
#[pyfunction]
#[pyo3(signature = (gen, localsplus, stack, resume, null, locals_mapping=None, exc_value=None, state="suspended", reenter=false))]
/// `resume` None leaves the instruction pointer where creation put it (never-started generators).
#[allow(clippy::too_many_arguments)]
fn enter_frame(
    py: Python<'_>,
    gen: &Bound<'_, PyAny>,
    localsplus: Vec<Bound<'_, PyAny>>,
    stack: Vec<Bound<'_, PyAny>>,
    resume: Option<u32>,
    null: &Bound<'_, PyAny>,
    locals_mapping: Option<Bound<'_, PyAny>>,
    exc_value: Option<Bound<'_, PyAny>>,
    state: &str,
    reenter: bool,
) -> PyResult<()> {
    let l = running_layout(py)?;
    // SAFETY: type checks on a live object.
    let is_generator =
        unsafe { ffi::PyGen_Check(gen.as_ptr()) != 0 || ffi::PyCoro_CheckExact(gen.as_ptr()) != 0 || ffi::PyAsyncGen_CheckExact(gen.as_ptr()) != 0 };
    if !is_generator {
        return Err(PyValueError::new_err("enter_frame needs a generator, coroutine or async generator"));
    }
    // A generator, coroutine or async generator: the same frame under another name.
    let code = gen.getattr("gi_code").or_else(|_| gen.getattr("cr_code")).or_else(|_| gen.getattr("ag_code"))?;
    // A parameter a closure captures is in co_varnames and co_cellvars but has one slot.
    let varnames: Vec<String> = code.getattr("co_varnames")?.extract()?;
    let cellvars: Vec<String> = code.getattr("co_cellvars")?.extract()?;
    let own_cells = cellvars.iter().filter(|c| !varnames.contains(c)).count();
    let nlocalsplus: usize = varnames.len() + own_cells + code.getattr("co_freevars")?.len()?;
    let stacksize: usize = code.getattr("co_stacksize")?.extract()?;
    if localsplus.len() != nlocalsplus {
        return Err(PyValueError::new_err(format!("frame has {} local slots, code has {nlocalsplus}", localsplus.len())));
    }
    if stack.len() > stacksize {
        return Err(PyValueError::new_err(format!("value stack of {} exceeds co_stacksize {stacksize}", stack.len())));
    }
    let ncode: usize = code.getattr("co_code")?.len()? / 2;
    if resume.unwrap_or(0) as usize > ncode {
        return Err(PyValueError::new_err(format!("resume offset {resume:?} outside the code ({ncode} units)")));
    }
    let state_value = match state {
        "suspended" => l.frame_suspended,
        "created" => l.frame_created,
        "suspended_yield_from" => l.frame_suspended_yield_from.unwrap_or(l.frame_suspended),
        other => return Err(PyValueError::new_err(format!("unknown frame state {other}"))),
    };
    // SAFETY: `gen` is a live generator, coroutine or async generator (checked above) of
    // this interpreter, so its embedded frame sits at the layout's offsets; it has not run
    // (checked below), so nothing else is using the frame, and its code's frame has room
    // for `localsplus` and `stack` (lengths checked above against the code object).
    // (Movable layouts have an int stacktop: 3.14's stack pointer is not written yet.)
    let stacktop = l.frame_stacktop.ok_or_else(|| PyRuntimeError::new_err("enter_frame: this version's frames have no stacktop"))?;
    unsafe {
        let g = gen.as_ptr() as *mut u8;
        let current = *(g.add(l.gen_frame_state) as *const i8) as i32;
        // `reenter`: a frame entered before may be entered again while it has not run.
        let not_run = current == l.frame_created || (reenter && current < l.frame_executing);
        if !not_run {
            return Err(PyRuntimeError::new_err("enter_frame needs a generator that has not run"));
        }
        let frame = g.add(l.gen_iframe);
        let frame_code = *(frame.add(l.frame_executable) as *const *mut ffi::PyObject);
        if frame_code != code.as_ptr() {
            return Err(PyRuntimeError::new_err("generator frame does not run its gi_code"));
        }
        let slots = frame.add(l.frame_localsplus) as *mut *mut ffi::PyObject;
        let put = |at: usize, v: &Bound<'_, PyAny>| {
            let old = *slots.add(at);
            *slots.add(at) = if v.is(null) { std::ptr::null_mut() } else { ffi::Py_NewRef(v.as_ptr()) };
            ffi::Py_XDECREF(old);
        };
        for (i, v) in localsplus.iter().enumerate() {
            put(i, v);
        }
        // Release what a previous entry left on the stack, then write the new stack.
        let old_top = *(frame.add(stacktop) as *const i32);
        for j in nlocalsplus..(old_top.max(0) as usize).min(nlocalsplus + stacksize) {
            let old = *slots.add(j);
            *slots.add(j) = std::ptr::null_mut();
            ffi::Py_XDECREF(old);
        }
        // Slots above the old top hold no references (possibly stale bytes): overwrite.
        for (j, v) in stack.iter().enumerate() {
            *slots.add(nlocalsplus + j) = if v.is(null) { std::ptr::null_mut() } else { ffi::Py_NewRef(v.as_ptr()) };
        }
        *(frame.add(stacktop) as *mut i32) = (nlocalsplus + stack.len()) as i32;
        let code_start = (frame_code as *mut u8).add(l.code_code_adaptive);
        if let Some(resume) = resume {
            if let Some(instr_ptr) = l.frame_instr_ptr {
                *(frame.add(instr_ptr) as *mut *mut u8) = code_start.add(2 * resume as usize);
            } else if let Some(prev_instr) = l.frame_prev_instr {
                // prev_instr: the unit before the one that runs next (may be -1 unit).
                *(frame.add(prev_instr) as *mut *mut u8) = code_start.offset(2 * (resume as isize - 1));
            }
        }
        if let Some(m) = &locals_mapping {
            let at = frame.add(l.frame_locals) as *mut *mut ffi::PyObject;
            let old = *at;
            *at = ffi::Py_NewRef(m.as_ptr());
            ffi::Py_XDECREF(old);
        }
        if let Some(e) = &exc_value {
            let at = g.add(l.gen_exc_state + l.err_stack_item_exc_value) as *mut *mut ffi::PyObject;
            let old = *at;
            *at = ffi::Py_NewRef(e.as_ptr());
            ffi::Py_XDECREF(old);
        }
        *(g.add(l.gen_frame_state) as *mut i8) = state_value as i8;
    }
    Ok(())
}

/// The text an `io.TextIOWrapper` has decoded from its buffer but not yet handed out
/// (its position is not `tell()`-able while a `for line in f` loop runs). Read from the
/// object's own fields in this process, at the offsets of this interpreter's layout.
#[pyfunction]
fn text_read_ahead(py: Python<'_>, wrapper: &Bound<'_, PyAny>) -> PyResult<String> {
    let io = py.import("io")?;
    if !wrapper.get_type().is(&io.getattr("TextIOWrapper")?) {
        return Err(PyValueError::new_err("not an io.TextIOWrapper"));
    }
    let v = py.version_info();
    let l: &Layout = layouts::for_version(v.major, v.minor).ok_or_else(|| PyRuntimeError::new_err("unsupported Python version"))?;
    let base = wrapper.as_ptr() as *const u8;
    // SAFETY: `wrapper` is an exact TextIOWrapper, alive for this call; the offsets are
    // this interpreter's (checked against its debug information when generated).
    unsafe {
        let chars = *(base.add(l.textio_decoded_chars) as *const *mut ffi::PyObject);
        if chars.is_null() {
            return Ok(String::new());
        }
        let used = *(base.add(l.textio_decoded_chars_used) as *const isize);
        let text: String = Bound::from_borrowed_ptr(py, chars).extract()?;
        Ok(text.chars().skip(used.max(0) as usize).collect())
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(text_read_ahead, m)?)?;
    m.add_function(wrap_pyfunction!(decode_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(enter_frame, m)?)?;
    m.add_function(wrap_pyfunction!(parse_header, m)?)?;
    m.add_function(wrap_pyfunction!(decode_report, m)?)?;
    m.add_function(wrap_pyfunction!(encode_reply, m)?)?;
    m.add_function(wrap_pyfunction!(read_line_holding_gil, m)?)?;
    m.add_function(wrap_pyfunction!(write_holding_gil, m)?)?;
    m.add_function(wrap_pyfunction!(let_other_threads_run, m)?)?;
    m.add_function(wrap_pyfunction!(encode_readiness, m)?)?;
    m.add_function(wrap_pyfunction!(parse_exception_table, m)?)?;
    m.add_function(wrap_pyfunction!(shift_exception_table, m)?)?;
    m.add_function(wrap_pyfunction!(_test_snapshot_with_bad_id, m)?)?;
    add_records(m)?;
    m.add("HEADER_LEN", HEADER_LEN)?;
    m.add("FORMAT_VERSION", pyteleport::snapshot::FORMAT_VERSION)?;
    // The pipe protocol's fixed parts (pyteleport::snapshot::report).
    m.add("SHM_MARKER", PyBytes::new(py, report::SHM_MARKER.as_bytes()))?;
    m.add("GO", PyBytes::new(py, report::GO))?;
    m.add("COMMITTING", PyBytes::new(py, report::COMMITTING))?;
    m.add("CONFIRM_PREAMBLE", PyBytes::new(py, report::CONFIRM_PREAMBLE.as_bytes()))?;
    m.add("READY_MARKER", PyBytes::new(py, report::READY_MARKER.as_bytes()))?;
    m.add("RESTORE_DRIVER_KEY", report::RESTORE_DRIVER_KEY)?;
    m.add("DRIVER_PENDING_LOCAL", report::DRIVER_PENDING_LOCAL)?;
    // The pyteleport._reducers helpers a snapshot may call: (name, required, total).
    let reducers: Vec<(&str, usize, usize)> = Reducer::ALL.iter().map(|r| (r.name(), r.arity().0, r.arity().1)).collect();
    m.add("REDUCERS", reducers)?;
    m.add("REDUCERS_MODULE", pyteleport::snapshot::reducers::MODULE)?;
    // Code flags and local kinds (pyteleport::bytecode), and this interpreter's frame states.
    {
        use pyteleport::bytecode as b;
        m.add("CO_VARARGS", b::CO_VARARGS)?;
        m.add("CO_VARKEYWORDS", b::CO_VARKEYWORDS)?;
        m.add("CO_GENERATOR", b::CO_GENERATOR)?;
        m.add("CO_FAST_LOCAL", b::CO_FAST_LOCAL)?;
        m.add("CO_FAST_CELL", b::CO_FAST_CELL)?;
        m.add("CO_FAST_FREE", b::CO_FAST_FREE)?;
    }
    m.add("FRAME_STATES", frame_states(py)?)?;
    Ok(())
}
