//! `pyteleport dump`: every thread, every frame, locals and value stack, as a
//! traceback-like text or as stable JSON (see docs/dump-json.md).

use serde_json::{json, Map, Value as Json};

use crate::inspect::ProcessState;
use crate::repr::{repr, type_name};
use crate::snapshot::{FrameInfo, ObjId, ObjectGraph, StackSource, Value};

const CO_FAST_HIDDEN: u8 = 0x10;
const CO_OPTIMIZED: u32 = 0x1;
const CO_FAST_CELL: u8 = 0x40;
const CO_FAST_FREE: u8 = 0x80;

/// Locals by name, as `frame.f_locals` shows them: cells dereferenced, unbound names and
/// hidden comprehension slots left out; module and class bodies use their mapping.
pub fn frame_locals(g: &ObjectGraph, f: &FrameInfo, minor: u8) -> Vec<(String, ObjId)> {
    let mut out = Vec::new();
    let Value::Code(code) = &g.get(f.code).value else { return out };
    // Module and class bodies keep their names in a mapping; a comprehension inlined in
    // them (3.12+) binds hidden fast locals. `f_locals` adds the bound ones to the mapping
    // on 3.12, and shows only them on 3.13+ (a FrameLocalsProxy over the fast locals).
    let optimized = code.flags & CO_OPTIMIZED != 0;
    let mut hidden_bound = false;
    for (i, slot) in f.localsplus.iter().enumerate() {
        let kind = code.localsplus_kinds.get(i).copied().unwrap_or(0);
        if kind & CO_FAST_HIDDEN != 0 && (optimized || slot.is_none()) {
            continue;
        }
        let Some(mut v) = *slot else { continue };
        hidden_bound |= kind & CO_FAST_HIDDEN != 0;
        if kind & (CO_FAST_CELL | CO_FAST_FREE) != 0 {
            if let Value::Cell(content) = &g.get(v).value {
                match content {
                    Some(c) => v = *c,
                    None => continue,
                }
            }
        }
        out.push((code.localsplus_names.get(i).cloned().unwrap_or_default(), v));
    }
    if hidden_bound && minor >= 13 {
        return out;
    }
    if let Some(m) = f.locals_mapping {
        if let Value::Dict(items) = &g.get(m).value {
            let mut mapped = Vec::with_capacity(items.len() + out.len());
            for (k, v) in items {
                if let Some(name) = g.str_of(*k) {
                    mapped.push((name.into_owned(), *v));
                }
            }
            // The fast locals are added after the mapping's own names.
            mapped.retain(|(n, _)| !out.iter().any(|(o, _)| o == n));
            mapped.extend(out);
            out = mapped;
        }
    }
    out
}

fn value_json(g: &ObjectGraph, id: ObjId, depth: usize, minor: u8) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(type_name(g, id)));
    m.insert("repr".into(), json!(repr(g, id)));
    if let Value::Generator { frame, python_state, .. } = &g.get(id).value {
        m.insert("state".into(), json!(python_state));
        if let (Some(frame), true) = (frame, depth < 8) {
            m.insert("frame".into(), frame_json(g, frame, depth + 1, minor));
        }
    }
    Json::Object(m)
}

pub fn frame_json(g: &ObjectGraph, f: &FrameInfo, depth: usize, minor: u8) -> Json {
    let Value::Code(code) = &g.get(f.code).value else { return Json::Null };
    let mut locals = Map::new();
    for (name, v) in frame_locals(g, f, minor) {
        locals.insert(name, value_json(g, v, depth, minor));
    }
    let stack: Vec<Json> = f.stack.iter().map(|s| s.map(|v| value_json(g, v, depth, minor)).unwrap_or(Json::Null)).collect();
    json!({
        "name": code.name,
        "qualname": code.qualname,
        "filename": code.filename,
        "first_line": code.first_line,
        "line": f.line,
        "offset": f.lasti * 2,
        "locals": locals,
        "stack": stack,
        "stack_depth_from": match f.stack_from { StackSource::Stacktop => "stacktop", StackSource::Static => "static", StackSource::Unknown => "unknown" },
        "generator": f.generator.is_some(),
    })
}

pub fn to_json(state: &ProcessState) -> Json {
    let g = &state.graph;
    let threads: Vec<Json> = state
        .threads
        .iter()
        .map(|t| {
            json!({
                "thread_id": t.thread_id,
                "native_thread_id": t.native_thread_id,
                "name": t.name,
                "is_main": t.is_main,
                "frames": t.frames.iter().map(|f| frame_json(g, f, 0, state.py.version.minor)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "pid": state.py.pid,
        "python_version": state.py.version.to_string(),
        "threads": threads,
    })
}

/// Traceback-like text, outermost frame first like Python's own tracebacks.
pub fn to_text(state: &ProcessState) -> String {
    let head = format!("Process {}: {} (CPython {})\n", state.py.pid, state.py.binary.display(), state.py.version);
    threads_text(head, &state.graph, &state.threads, state.py.version.minor)
}

/// A snapshot, shown the same way.
pub fn snapshot_text(snap: &crate::snapshot::Snapshot) -> String {
    let head = format!(
        "Snapshot of process {} ({}), CPython {}, argv {:?}, cwd {}\n",
        snap.process.pid, snap.process.executable, snap.python, snap.process.argv, snap.process.cwd
    );
    let threads: Vec<crate::snapshot::ThreadInfo> =
        std::iter::once(&snap.thread).chain(snap.other_threads.iter().map(|o| &o.thread)).cloned().collect();
    threads_text(head, &snap.graph, &threads, snap.python.minor)
}

fn threads_text(mut out: String, g: &ObjectGraph, threads: &[crate::snapshot::ThreadInfo], minor: u8) -> String {
    for t in threads {
        out.push_str(&format!(
            "\nThread {} (native {}){}{}\n",
            t.thread_id,
            t.native_thread_id,
            t.name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default(),
            if t.is_main { " [main]" } else { "" }
        ));
        out.push_str("Traceback (most recent call last):\n");
        for f in t.frames.iter().rev() {
            let Value::Code(code) = &g.get(f.code).value else { continue };
            out.push_str(&format!(
                "  File \"{}\", line {}, in {}\n",
                code.filename,
                f.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                code.qualname
            ));
            if let Some(src) = source_line(&code.filename, f.line) {
                out.push_str(&format!("    {src}\n"));
            }
            for (name, v) in frame_locals(g, f, minor) {
                if f.locals_mapping.is_some() && name.starts_with("__") && name.ends_with("__") {
                    continue;
                }
                out.push_str(&format!("      {name} = {}\n", short(&repr(g, v))));
            }
            if !f.stack.is_empty() {
                let items: Vec<String> = f.stack.iter().map(|s| s.map(|v| short(&repr(g, v))).unwrap_or_else(|| "<NULL>".into())).collect();
                out.push_str(&format!("      [stack] {}\n", items.join(" | ")));
            }
        }
    }
    out
}

fn short(s: &str) -> String {
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

fn source_line(file: &str, line: Option<i32>) -> Option<String> {
    let line = line? as usize;
    let text = read_source(file)?;
    text.lines().nth(line.checked_sub(1)?).map(|l| l.trim().to_string())
}

/// A source file's text, read only when it is a regular file of a sane size: a snapshot
/// names its files, and `inspect` must not hang on a FIFO, read a device forever or load
/// a huge file because a (possibly crafted) snapshot says so.
fn read_source(file: &str) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const MAX_SOURCE: u64 = 16 << 20;
    // Python source only: a crafted snapshot naming /etc/shadow as a code's file must not
    // have its lines shown.
    if !(file.ends_with(".py") || file.ends_with(".pyw")) {
        return None;
    }
    // O_NONBLOCK: opening a FIFO does not wait for a writer (and it is refused below).
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(file).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE {
        return None;
    }
    let mut text = String::new();
    f.take(MAX_SOURCE).read_to_string(&mut text).ok()?;
    Some(text)
}
