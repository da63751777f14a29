//! Structural validation of a decoded snapshot: a body whose checksum is right can still
//! be hand-crafted or written by a buggy producer. Everything the restore engine follows
//! (object ids, frame codes, one resume plan per frame) is checked here, so that a bad
//! file is refused with a message before any of it runs.

use super::model::{CodeInfo, FrameInfo, FrameResume, ObjId, ObjectGraph, Snapshot, ThreadInfo, TypeInfo, Value};
use super::Invalid;

impl Value {
    /// Every object id this value refers to, in no particular order.
    pub fn for_each_ref(&self, f: &mut dyn FnMut(ObjId)) {
        let opt = |o: &Option<ObjId>, f: &mut dyn FnMut(ObjId)| {
            if let Some(id) = *o {
                f(id)
            }
        };
        match self {
            Value::None
            | Value::Ellipsis
            | Value::NotImplemented
            | Value::Bool(_)
            | Value::Int { .. }
            | Value::Float(_)
            | Value::Complex(..)
            | Value::Str(_)
            | Value::Bytes(_)
            | Value::ByteArray(_)
            | Value::RangeIter { .. }
            | Value::Stdio(_)
            | Value::Object
            | Value::Opaque
            | Value::Unread(_) => {}
            Value::Tuple(v) | Value::List(v) | Value::Set(v) | Value::FrozenSet(v) => v.iter().for_each(|&i| f(i)),
            Value::Dict(pairs) => pairs.iter().for_each(|&(k, v)| {
                f(k);
                f(v)
            }),
            Value::Cell(c) => opt(c, f),
            Value::Module { dict, patches, .. } => {
                opt(dict, f);
                patches.iter().for_each(|(_, i)| f(*i));
            }
            Value::Type(t) => type_refs(t, f),
            Value::Function { code, name, qualname, globals, defaults, kwdefaults, closure, dict, annotations, .. } => {
                f(*code);
                f(*name);
                f(*qualname);
                for o in [globals, defaults, kwdefaults, closure, dict, annotations] {
                    opt(o, f);
                }
            }
            Value::Code(c) => code_refs(c, f),
            Value::Method { func, self_ } => {
                f(*func);
                f(*self_)
            }
            Value::BuiltinFunction { self_, .. } => opt(self_, f),
            Value::Generator { name, qualname, frame, exc_state, .. } => {
                f(*name);
                f(*qualname);
                opt(exc_state, f);
                if let Some(fr) = frame {
                    frame_refs(fr, f);
                }
            }
            Value::Range { start, stop, step } => [start, stop, step].iter().for_each(|&&i| f(i)),
            Value::Rebuilt { args, dict, .. } => {
                args.iter().for_each(|a| opt(a, f));
                opt(dict, f);
            }
            Value::SeqIter { seq, .. } => opt(seq, f),
            Value::Enumerate { iter, long_index, .. } => {
                f(*iter);
                opt(long_index, f);
            }
            Value::Zip { iters, .. } => f(*iters),
            Value::DictIter { dict, .. } => opt(dict, f),
            Value::Exception { args, dict, context, cause, notes, .. } => {
                for o in [args, dict, context, cause, notes] {
                    opt(o, f);
                }
            }
            Value::Instance { dict, slots, base } => {
                opt(dict, f);
                slots.iter().for_each(|(_, s)| opt(s, f));
                if let Some(b) = base {
                    b.for_each_ref(f);
                }
            }
            Value::Descriptor { owner, .. } => f(*owner),
            Value::Reduce { callable, args, state, listitems, dictitems } => {
                f(*callable);
                f(*args);
                for o in [state, listitems, dictitems] {
                    opt(o, f);
                }
            }
            Value::Global { state, .. } => opt(state, f),
        }
    }
}

fn type_refs(t: &TypeInfo, f: &mut dyn FnMut(ObjId)) {
    t.mro.iter().chain(&t.bases).for_each(|&i| f(i));
    t.dict.iter().chain(&t.metaclass).for_each(|&i| f(i));
    t.patches.iter().for_each(|&(_, i)| f(i));
}

fn code_refs(c: &CodeInfo, f: &mut dyn FnMut(ObjId)) {
    c.consts.iter().for_each(|&i| f(i));
}

/// Object ids a frame refers to (its code, slots, stack and namespaces).
pub fn frame_refs(fr: &FrameInfo, f: &mut dyn FnMut(ObjId)) {
    f(fr.code);
    fr.localsplus.iter().chain(&fr.stack).flatten().for_each(|&i| f(i));
    [fr.globals, fr.locals_mapping, fr.function, fr.generator].iter().flatten().for_each(|&i| f(i));
}

fn is_code(graph: &ObjectGraph, id: ObjId) -> bool {
    matches!(graph.objects.get(id as usize).map(|o| &o.value), Some(Value::Code(_)))
}

/// Check every reference and the frame/plan correspondence; the first problem found is
/// returned.
pub fn validate(snap: &Snapshot) -> Result<(), Invalid> {
    let graph = &snap.graph;
    let count = graph.objects.len();
    let mut bad: Option<(String, ObjId)> = None;
    let mut check = |place: &dyn Fn() -> String, id: ObjId| {
        if bad.is_none() && id as usize >= count {
            bad = Some((place(), id));
        }
    };
    for (n, o) in graph.objects.iter().enumerate() {
        if let Some(t) = o.type_id {
            check(&|| format!("the type of object {n}"), t);
        }
        o.value.for_each_ref(&mut |id| check(&|| format!("object {n}"), id));
    }
    let threads: Vec<(&ThreadInfo, &[FrameResume])> =
        std::iter::once((&snap.thread, snap.resume.as_slice())).chain(snap.other_threads.iter().map(|o| (&o.thread, o.resume.as_slice()))).collect();
    for (t, (thread, plans)) in threads.iter().enumerate() {
        let who = |what: String| if t == 0 { what } else { format!("{what} of thread {t}") };
        for (n, fr) in thread.frames.iter().enumerate() {
            frame_refs(fr, &mut |id| check(&|| who(format!("frame {n}")), id));
        }
        for (n, plan) in plans.iter().enumerate() {
            for id in plan.exc_value.iter().chain(&plan.init_self) {
                check(&|| who(format!("the resume plan of frame {n}")), *id);
            }
        }
        for id in thread.handled_exception.iter().chain(&thread.thread_object).chain(thread.held_rlocks.iter().map(|(l, _)| l)) {
            check(&|| who("the thread's state".into()), *id);
        }
    }
    if let Some(m) = snap.main_module {
        check(&|| "the __main__ module".into(), m);
    }
    for (name, id) in &snap.redirected_streams {
        check(&|| format!("the redirected sys.{name}"), *id);
    }
    for (name, id) in &snap.interpreter_extras {
        check(&|| format!("the interpreter's {name}"), *id);
    }
    if let Some((place, id)) = bad {
        return Err(Invalid::IdOutOfRange { place, id, count });
    }
    for (thread, _) in &threads {
        for (n, fr) in thread.frames.iter().enumerate() {
            if !is_code(graph, fr.code) {
                return Err(Invalid::NotCode { place: format!("the code of frame {n}"), id: fr.code });
            }
            if let Value::Code(code) = &graph.objects[fr.code as usize].value {
                if fr.localsplus.len() != code.localsplus_names.len() {
                    return Err(Invalid::Frame {
                        frame: n,
                        what: format!("{} local slots for a code with {}", fr.localsplus.len(), code.localsplus_names.len()),
                    });
                }
            }
        }
    }
    for (n, o) in graph.objects.iter().enumerate() {
        let code = match &o.value {
            Value::Function { code, .. } => Some(*code),
            Value::Generator { frame: Some(fr), .. } => Some(fr.code),
            _ => None,
        };
        if let Some(code) = code.filter(|&c| !is_code(graph, c)) {
            return Err(Invalid::NotCode { place: format!("the code of object {n}"), id: code });
        }
    }
    for (thread, plans) in &threads {
        if thread.frames.len() != plans.len() {
            return Err(Invalid::PlanCount { frames: thread.frames.len(), plans: plans.len() });
        }
    }
    Ok(())
}
