//! The native half of the `pyteleport` package: decoding snapshots into Python data and
//! re-entering frames. Frame re-entry writes a generator's interpreter frame directly,
//! with the same per-version layout tables the supervisor reads with.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use pyteleport::layouts::{self, Layout};
use pyteleport::snapshot::{FrameInfo, ObjId, PyStr, Value};
use pyteleport::snapshot::Snapshot;

fn opt(py: Python<'_>, id: Option<ObjId>) -> PyObject {
    match id {
        Some(i) => i.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None()),
        None => py.None(),
    }
}

fn ids(py: Python<'_>, v: &[ObjId]) -> PyResult<PyObject> {
    Ok(PyList::new(py, v.iter().copied())?.into_any().unbind())
}

fn opt_ids(py: Python<'_>, v: &[Option<ObjId>]) -> PyResult<PyObject> {
    let items: Vec<PyObject> = v.iter().map(|i| opt(py, *i)).collect();
    Ok(PyList::new(py, items)?.into_any().unbind())
}

fn py_str(py: Python<'_>, s: &PyStr) -> PyResult<PyObject> {
    match s {
        PyStr::Text(t) => Ok(t.into_pyobject(py)?.into_any().unbind()),
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

fn tuple(py: Python<'_>, items: Vec<PyObject>) -> PyResult<PyObject> {
    Ok(PyTuple::new(py, items)?.into_any().unbind())
}

fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<PyObject> {
    let s = |x: &str| -> PyObject { x.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None()) };
    let o = |x: Option<ObjId>| opt(py, x);
    let n = |x: ObjId| -> PyObject { x.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None()) };
    let i = |x: i64| -> PyObject { x.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None()) };
    let b = |x: bool| -> PyObject { x.into_pyobject(py).map(|o| o.to_owned().into_any().unbind()).unwrap_or_else(|_| py.None()) };
    Ok(match v {
        Value::None => tuple(py, vec![s("none")])?,
        Value::Ellipsis => tuple(py, vec![s("ellipsis")])?,
        Value::NotImplemented => tuple(py, vec![s("notimplemented")])?,
        Value::Bool(x) => tuple(py, vec![s("bool"), b(*x)])?,
        Value::Int { negative, digits } => tuple(py, vec![s("int"), py_int(py, *negative, digits)?])?,
        Value::Float(x) => tuple(py, vec![s("float"), x.into_pyobject(py)?.into_any().unbind()])?,
        Value::Complex(re, im) => tuple(py, vec![s("complex"), re.into_pyobject(py)?.into_any().unbind(), im.into_pyobject(py)?.into_any().unbind()])?,
        Value::Str(x) => tuple(py, vec![s("str"), py_str(py, x)?])?,
        Value::Bytes(x) => tuple(py, vec![s("bytes"), PyBytes::new(py, x).into_any().unbind()])?,
        Value::ByteArray(x) => tuple(py, vec![s("bytearray"), PyBytes::new(py, x).into_any().unbind()])?,
        Value::Tuple(x) => tuple(py, vec![s("tuple"), ids(py, x)?])?,
        Value::List(x) => tuple(py, vec![s("list"), ids(py, x)?])?,
        Value::Set(x) => tuple(py, vec![s("set"), ids(py, x)?])?,
        Value::FrozenSet(x) => tuple(py, vec![s("frozenset"), ids(py, x)?])?,
        Value::Dict(items) => {
            let flat: Vec<ObjId> = items.iter().flat_map(|(k, v)| [*k, *v]).collect();
            tuple(py, vec![s("dict"), ids(py, &flat)?])?
        }
        Value::Cell(c) => tuple(py, vec![s("cell"), o(*c)])?,
        Value::Module { name, dict, patches, .. } => {
            let p: Vec<PyObject> = patches.iter().map(|(k, v)| tuple(py, vec![s(k), n(*v)])).collect::<PyResult<_>>()?;
            tuple(py, vec![s("module"), s(name), o(*dict), PyList::new(py, p)?.into_any().unbind()])?
        }
        Value::Type(t) => tuple(
            py,
            vec![s("type"), s(&t.module), s(&t.qualname), s(&t.name), o(t.dict), ids(py, &t.bases)?, o(t.metaclass), t.builtin.as_deref().map(s).unwrap_or_else(|| py.None()), ids(py, &t.mro)?],
        )?,
        Value::Function { code, name, qualname, module_name, globals_module, globals, defaults, kwdefaults, closure, dict, .. } => tuple(
            py,
            vec![s("function"), n(*code), n(*name), n(*qualname), module_name.as_deref().map(s).unwrap_or_else(|| py.None()),
                 globals_module.as_deref().map(s).unwrap_or_else(|| py.None()), o(*globals), o(*defaults), o(*kwdefaults), o(*closure), o(*dict)],
        )?,
        Value::Code(c) => {
            let d = PyDict::new(py);
            d.set_item("name", &c.name)?;
            d.set_item("qualname", &c.qualname)?;
            d.set_item("filename", &c.filename)?;
            d.set_item("first_line", c.first_line)?;
            d.set_item("flags", c.flags)?;
            d.set_item("argcount", c.argcount)?;
            d.set_item("posonlyargcount", c.posonlyargcount)?;
            d.set_item("kwonlyargcount", c.kwonlyargcount)?;
            d.set_item("stacksize", c.stacksize)?;
            d.set_item("nlocals", c.nlocals)?;
            d.set_item("localsplus_names", c.localsplus_names.clone())?;
            d.set_item("localsplus_kinds", PyBytes::new(py, &c.localsplus_kinds))?;
            d.set_item("code", PyBytes::new(py, &c.code))?;
            d.set_item("linetable", PyBytes::new(py, &c.linetable))?;
            d.set_item("exceptiontable", PyBytes::new(py, &c.exceptiontable))?;
            d.set_item("consts", ids(py, &c.consts)?)?;
            d.set_item("names", c.names.clone())?;
            tuple(py, vec![s("code"), d.into_any().unbind()])?
        }
        Value::Method { func, self_ } => tuple(py, vec![s("method"), n(*func), n(*self_)])?,
        Value::BuiltinFunction { name, self_, module } => tuple(py, vec![s("builtin"), s(name), o(*self_), module.as_deref().map(s).unwrap_or_else(|| py.None())])?,
        Value::Generator { kind, name, qualname, state, frame, exc_state, .. } => {
            let f = match frame {
                Some(f) => frame_to_py(py, f)?,
                None => py.None(),
            };
            tuple(py, vec![s("generator"), s(kind), n(*name), n(*qualname), i(*state as i64), f, o(*exc_state)])?
        }
        Value::Range { start, stop, step } => tuple(py, vec![s("range"), n(*start), n(*stop), n(*step)])?,
        Value::Rebuilt { type_name, args, dict } => {
            let items: Vec<PyObject> = args.iter().map(|a| o(*a)).collect();
            tuple(py, vec![s("rebuilt"), s(type_name), PyList::new(py, items)?.into_any().unbind(), o(*dict)])?
        }
        Value::RangeIter { start, step, len, index } => tuple(py, vec![s("rangeiter"), i(*start), i(*step), i(*len), i(*index)])?,
        Value::SeqIter { seq, index } => tuple(py, vec![s("seqiter"), o(*seq), i(*index)])?,
        Value::Enumerate { iter, index, long_index } => tuple(py, vec![s("enumerate"), n(*iter), i(*index), o(*long_index)])?,
        Value::Zip { iters, strict } => tuple(py, vec![s("zip"), n(*iters), b(*strict)])?,
        Value::DictIter { dict, pos, len } => tuple(py, vec![s("dictiter"), o(*dict), i(*pos), i(*len)])?,
        Value::Exception { args, dict, context, cause, suppress_context, notes } => {
            tuple(py, vec![s("exception"), o(*args), o(*dict), o(*context), o(*cause), b(*suppress_context), o(*notes)])?
        }
        Value::Instance { dict, slots, base } => {
            let sl: Vec<PyObject> = slots.iter().map(|(k, v)| tuple(py, vec![s(k), o(*v)])).collect::<PyResult<_>>()?;
            let base = match base {
                Some(b) => value_to_py(py, b)?,
                None => py.None(),
            };
            tuple(py, vec![s("instance"), o(*dict), PyList::new(py, sl)?.into_any().unbind(), base])?
        }
        Value::Object => tuple(py, vec![s("object")])?,
        Value::Stdio(name) => tuple(py, vec![s("stdio"), s(name)])?,
        Value::Global { module, name, state } => tuple(py, vec![s("global"), s(module), s(name), o(*state)])?,
        Value::Reduce { callable, args, state, listitems, dictitems } => tuple(py, vec![s("reduce"), n(*callable), n(*args), o(*state), o(*listitems), o(*dictitems)])?,
        Value::Descriptor { owner, name } => tuple(py, vec![s("descriptor"), n(*owner), s(name)])?,
        Value::Opaque => tuple(py, vec![s("opaque")])?,
        Value::Unread(m) => tuple(py, vec![s("unread"), s(m)])?,
    })
}

fn frame_to_py(py: Python<'_>, f: &FrameInfo) -> PyResult<PyObject> {
    let d = PyDict::new(py);
    d.set_item("code", f.code)?;
    d.set_item("lasti", f.lasti)?;
    d.set_item("line", f.line)?;
    d.set_item("owner", f.owner)?;
    d.set_item("localsplus", opt_ids(py, &f.localsplus)?)?;
    d.set_item("stack", opt_ids(py, &f.stack)?)?;
    d.set_item("globals", opt(py, f.globals))?;
    d.set_item("locals_mapping", opt(py, f.locals_mapping))?;
    d.set_item("function", opt(py, f.function))?;
    d.set_item("generator", opt(py, f.generator))?;
    // A suspended generator resumes after the instruction it stopped in.
    d.set_item("instr_start", f.instr_start)?;
    Ok(d.into_any().unbind())
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
            Value::Tuple(ids) if scalar(&ready, ids) => Some(PyTuple::new(py, ids.iter().map(|&x| ready[x as usize].as_ref().map(|r| r.clone_ref(py))))?.into_any().unbind()),
            Value::List(ids) if scalar(&ready, ids) => Some(PyList::new(py, ids.iter().map(|&x| ready[x as usize].as_ref().map(|r| r.clone_ref(py))))?.into_any().unbind()),
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

/// Check and decode a snapshot into plain Python data for the restore engine. With
/// `unset`, also returns `ready`: one entry per object, already built, or `unset`.
#[pyfunction]
#[pyo3(signature = (data, unset=None))]
fn decode_snapshot(py: Python<'_>, data: pyo3::buffer::PyBuffer<u8>, unset: Option<Bound<'_, PyAny>>) -> PyResult<PyObject> {
    // bytes or a bytearray the snapshot was read into (no copy of a 100 MB state).
    if !data.is_c_contiguous() {
        return Err(PyValueError::new_err("the snapshot buffer is not contiguous"));
    }
    // SAFETY: a contiguous buffer of len_bytes() bytes, held by `data` while we read it;
    // nothing else runs Python code (which could resize it) during the decode.
    let bytes = unsafe { std::slice::from_raw_parts(data.buf_ptr() as *const u8, data.len_bytes()) };
    let snap = Snapshot::from_bytes(bytes).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let running = py.version_info();
    if (snap.python.major, snap.python.minor) != (running.major, running.minor) {
        return Err(PyValueError::new_err(format!(
            "snapshot was taken on CPython {}.{}, this is CPython {}.{}",
            snap.python.major, snap.python.minor, running.major, running.minor
        )));
    }
    let out = PyDict::new(py);
    let ready = match &unset {
        Some(u) => Some(ready_objects(py, &snap, u)?),
        None => None,
    };
    let ready_marker = tuple(py, vec!["ready".into_pyobject(py)?.into_any().unbind()])?;
    // One node stands for every built scalar (a million floats make no million tuples).
    let ready_node = tuple(py, vec![ready_marker.clone_ref(py), py.None(), 0u64.into_pyobject(py)?.into_any().unbind()])?;
    let objects: Vec<PyObject> = snap.graph.objects.iter().enumerate().map(|(i, o)| {
        // Built scalars need no node; built containers keep theirs, which the engine
        // reads structurally (class namespaces, __main__'s dict).
        let is_ready = match (&ready, &unset) {
            (Some(r), Some(u)) => !r[i].bind(py).is(u) && is_scalar(&o.value),
            _ => false,
        };
        if is_ready {
            return Ok(ready_node.clone_ref(py));
        }
        tuple(py, vec![value_to_py(py, &o.value)?, opt(py, o.type_id), o.addr.into_pyobject(py)?.into_any().unbind()])
    }).collect::<PyResult<_>>()?;
    out.set_item("objects", PyList::new(py, objects)?)?;
    if let Some(r) = ready {
        out.set_item("ready", PyList::new(py, r)?)?;
    }
    let frames: Vec<PyObject> = snap.thread.frames.iter().map(|f| frame_to_py(py, f)).collect::<PyResult<_>>()?;
    out.set_item("frames", PyList::new(py, frames)?)?;
    let resume: Vec<PyObject> = snap
        .resume
        .iter()
        .map(|r| {
            let d = PyDict::new(py);
            d.set_item("resume", r.resume)?;
            d.set_item("keep", r.keep)?;
            d.set_item("for_iter", r.for_iter)?;
            d.set_item("exc_value", opt(py, r.exc_value))?;
            d.set_item("init_self", opt(py, r.init_self))?;
            d.set_item("push", r.push)?;
            Ok(d.into_any().unbind())
        })
        .collect::<PyResult<_>>()?;
    out.set_item("resume", PyList::new(py, resume)?)?;
    out.set_item("main_module", opt(py, snap.main_module))?;
    out.set_item("redirected_streams", snap.redirected_streams.clone())?;
    out.set_item("argv", snap.process.argv.clone())?;
    out.set_item("sys_path", snap.process.sys_path.clone())?;
    out.set_item("recursion_limit", snap.process.recursion_limit)?;
    out.set_item("stdin_pending", PyBytes::new(py, &snap.process.stdin_pending))?;
    out.set_item("cwd", snap.process.cwd.clone())?;
    out.set_item("pid", snap.process.pid)?;
    out.set_item("python", format!("{}", snap.python))?;
    Ok(out.into_any().unbind())
}

fn running_layout(py: Python<'_>) -> PyResult<&'static Layout> {
    let v = py.version_info();
    layouts::for_version(v.major, v.minor).ok_or_else(|| PyRuntimeError::new_err(format!("pyteleport has no layout for CPython {}.{}", v.major, v.minor)))
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
        let old_top = *(frame.add(l.frame_stacktop) as *const i32);
        for j in nlocalsplus..(old_top.max(0) as usize).min(nlocalsplus + stacksize) {
            let old = *slots.add(j);
            *slots.add(j) = std::ptr::null_mut();
            ffi::Py_XDECREF(old);
        }
        // Slots above the old top hold no references (possibly stale bytes): overwrite.
        for (j, v) in stack.iter().enumerate() {
            *slots.add(nlocalsplus + j) = if v.is(null) { std::ptr::null_mut() } else { ffi::Py_NewRef(v.as_ptr()) };
        }
        *(frame.add(l.frame_stacktop) as *mut i32) = (nlocalsplus + stack.len()) as i32;
        let code_start = (frame_code as *mut u8).add(l.code_code_adaptive);
        if let Some(resume) = resume { if let Some(instr_ptr) = l.frame_instr_ptr {
            *(frame.add(instr_ptr) as *mut *mut u8) = code_start.add(2 * resume as usize);
        } else if let Some(prev_instr) = l.frame_prev_instr {
            // prev_instr: the unit before the one that runs next (may be -1 unit).
            *(frame.add(prev_instr) as *mut *mut u8) = code_start.offset(2 * (resume as isize - 1));
        } }
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
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(text_read_ahead, m)?)?;
    m.add_function(wrap_pyfunction!(decode_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(enter_frame, m)?)?;
    Ok(())
}
