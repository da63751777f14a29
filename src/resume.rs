//! The resume planner: how each captured frame re-enters the bytecode in the new process.
//!
//! Pure: an object graph, the frames (innermost first) and the opcode table of the
//! program's CPython go in, one `FrameResume` per frame comes out. Nothing here reads
//! memory; the teleport supervisor and attach both call it on what they captured.

use crate::bytecode::{self, ExceptionTableEntry, Instruction};
pub use crate::error::ResumeError;
use crate::opcodes::OpcodeTable;
use crate::snapshot::{CodeInfo, FrameInfo, FrameResume, ObjId, ObjectGraph, StackSource, Value};

/// Where the innermost frame was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Inside a call (to the teleport shim): it resumes receiving the call's result.
    InCall,
    /// Between two instructions, at the eval loop's pending-work check (attach): it
    /// resumes with its value stack as it is.
    BetweenInstructions,
    /// Blocked inside a call that is made again (a lock, queue or join wait, a sleep: a
    /// thread other than the one being moved): it resumes at that call instruction with
    /// the call's inputs on its stack.
    RedoCall,
}

pub type Result<T> = std::result::Result<T, ResumeError>;

fn opcode_name(table: &OpcodeTable, op: u8) -> &'static str {
    table.info(op).name
}

fn code_of<'g>(graph: &'g ObjectGraph, f: &FrameInfo) -> Result<&'g CodeInfo> {
    match &graph.get(f.code).value {
        Value::Code(code) => Ok(code),
        _ => Err(ResumeError::FrameWithoutCode { addr: f.addr }),
    }
}

fn decode(code: &CodeInfo, table: &OpcodeTable) -> Result<Vec<Instruction>> {
    bytecode::try_instructions(&code.code, table).map_err(|source| ResumeError::Bytecode { qualname: code.qualname.clone(), source })
}

/// Index of the instruction containing code unit `lasti`, moved from a 3.11 PRECALL to
/// its CALL (a specialized PRECALL makes the call itself and skips CALL, including CALL's
/// pending-work check).
fn instruction_at(instrs: &[Instruction], lasti: i64, table: &OpcodeTable) -> Option<usize> {
    let i = instrs.iter().position(|ins| (ins.offset as i64) <= lasti && lasti < (ins.offset + ins.size) as i64)?;
    Some(if opcode_name(table, instrs[i].opcode) == "PRECALL" && i + 1 < instrs.len() { i + 1 } else { i })
}

fn exception_entries(code: &CodeInfo) -> Result<Vec<ExceptionTableEntry>> {
    bytecode::try_parse_exception_table(&code.exceptiontable).map_err(|source| ResumeError::ExceptionTable { source })
}

fn depths(code: &CodeInfo, entries: &[ExceptionTableEntry], table: &OpcodeTable) -> Result<Vec<Option<u32>>> {
    bytecode::stack_depths(&code.code, entries, table).map_err(|source| ResumeError::Bytecode { qualname: code.qualname.clone(), source })
}

/// Where a frame stopped *between* instructions (at the eval loop's pending-work check,
/// attach) resumes, and how deep its value stack is there: instructions whose check
/// comes before any effect (RESUME, backward jumps) run again; after a call, the check
/// follows the call and the frame goes on with the next instruction.
pub fn between_resume(code: &CodeInfo, lasti: i64, table: &OpcodeTable) -> Result<(u32, u32)> {
    let instrs = decode(code, table)?;
    let i = instruction_at(&instrs, lasti, table).ok_or_else(|| ResumeError::NoInstruction { qualname: code.qualname.clone(), lasti })?;
    let current = &instrs[i];
    let resume = match opcode_name(table, current.opcode) {
        "RESUME" | "JUMP_BACKWARD" | "JUMP_BACKWARD_NO_INTERRUPT" => current.offset,
        // 3.11's conditional backward jumps check for pending work only once the jump
        // is taken (the condition already popped): go on at the loop's top.
        "POP_JUMP_BACKWARD_IF_TRUE" | "POP_JUMP_BACKWARD_IF_FALSE" | "POP_JUMP_BACKWARD_IF_NONE" | "POP_JUMP_BACKWARD_IF_NOT_NONE" => {
            current.exec_jump_target(table).ok_or_else(|| ResumeError::NoJumpTarget { qualname: code.qualname.clone() })?
        }
        _ => current.offset + current.size,
    };
    Ok((resume, depth_at(code, resume, table)?))
}

/// The value stack's depth where the instruction at `offset` starts.
fn depth_at(code: &CodeInfo, offset: u32, table: &OpcodeTable) -> Result<u32> {
    let entries = exception_entries(code)?;
    depths(code, &entries, table)?
        .get(offset as usize)
        .copied()
        .flatten()
        .ok_or_else(|| ResumeError::NoDepth { qualname: code.qualname.clone(), offset })
}

/// Where a frame blocked inside a call that is made again resumes, and how deep its stack
/// is there: at the call instruction itself, or at the KW_NAMES before it (3.11/3.12 keep
/// keyword names in a register that instruction sets; 3.11's PRECALL may come between).
pub fn redo_resume(code: &CodeInfo, lasti: i64, table: &OpcodeTable) -> Result<(u32, u32)> {
    let instrs = decode(code, table)?;
    let i = instrs
        .iter()
        .position(|ins| (ins.offset as i64) <= lasti && lasti < (ins.offset + ins.size) as i64)
        .ok_or_else(|| ResumeError::NoInstruction { qualname: code.qualname.clone(), lasti })?;
    let name = opcode_name(table, instrs[i].opcode);
    let redoable = name.starts_with("CALL") && name != "CALL_FUNCTION_EX" || name.starts_with("PRECALL") || name == "BEFORE_WITH";
    if !redoable {
        return Err(ResumeError::NotARedoableCall { qualname: code.qualname.clone(), op: name });
    }
    let mut start = i;
    if start > 0 && opcode_name(table, instrs[start - 1].opcode).starts_with("PRECALL") && !name.starts_with("PRECALL") {
        start -= 1;
    }
    if start > 0 && opcode_name(table, instrs[start - 1].opcode) == "KW_NAMES" {
        start -= 1;
    } else {
        start = i;
    }
    let at = instrs[start].offset;
    Ok((at, depth_at(code, at, table)?))
}

/// Resume points for every frame, innermost first. `thread_exc`: the exception the
/// thread is handling (`sys.exc_info()` in the innermost frame).
pub fn plan_resume(
    graph: &ObjectGraph,
    frames: &[FrameInfo],
    table: &OpcodeTable,
    thread_exc: Option<ObjId>,
    stop: Stop,
) -> Result<Vec<FrameResume>> {
    let mut out: Vec<FrameResume> = Vec::with_capacity(frames.len());
    let mut inner_exc = thread_exc;
    for (k, f) in frames.iter().enumerate() {
        let code = code_of(graph, f)?;
        if k == 0 && stop != Stop::InCall {
            let (resume, keep) = if stop == Stop::RedoCall { redo_resume(code, f.lasti, table)? } else { between_resume(code, f.lasti, table)? };
            if keep as usize > f.stack.len() {
                return Err(ResumeError::ShallowStack { qualname: code.qualname.clone(), have: f.stack.len(), need: keep });
            }
            out.push(FrameResume { resume, keep, for_iter: None, exc_value: thread_exc, init_self: None, push: false });
            continue;
        }
        let instrs = decode(code, table)?;
        let i = instruction_at(&instrs, f.lasti, table).ok_or_else(|| ResumeError::NoInstructionInCall {
            addr: f.addr,
            qualname: code.qualname.clone(),
            lasti: f.lasti,
        })?;
        // The frame resumes after its call, receiving the callee's result.
        let current = &instrs[i];
        let name = opcode_name(table, current.opcode);
        let resume = current.offset + current.size;
        let entries = exception_entries(code)?;
        let after = depths(code, &entries, table)?.get(resume as usize).copied().flatten().ok_or_else(|| ResumeError::NoDepthAfterCall {
            qualname: code.qualname.clone(),
            line: f.line,
            offset: current.offset,
        })?;
        let keep = after.checked_sub(1).ok_or_else(|| ResumeError::EmptyAfterCall { qualname: code.qualname.clone() })?;
        if keep as usize > f.stack.len() {
            return Err(ResumeError::ShallowStackInCall { qualname: code.qualname.clone(), line: f.line, op: name, have: f.stack.len(), need: keep });
        }
        let for_iter = (name == "FOR_ITER").then_some(current.offset);
        let init_self = match k {
            0 => None,
            _ if frames[k - 1].through_init_cleanup => frames[k - 1].localsplus.first().copied().flatten(),
            _ => init_instance(graph, &frames[k - 1], f, current.arg as usize),
        };
        if k > 0 && f.stack_from != StackSource::Stacktop && init_self.is_none() {
            check_called_directly(graph, &frames[k - 1], f, name, current.arg as usize, code)?;
        }
        let exc_value = if k == 0 { thread_exc } else { inner_exc };
        // What the next frame out sees: the exception this frame saved when it entered
        // its handler, if it is inside one; otherwise what this frame sees.
        inner_exc = match saved_exception(&instrs, &entries, f, table, current.offset) {
            Some(saved) => saved,
            None => exc_value,
        };
        out.push(FrameResume { resume, keep, for_iter, exc_value, init_self, push: true });
    }
    Ok(out)
}

/// A frame that reached its callee through C code (its stack pointer was not saved) is
/// resumable only when the C layer is transparent: a Python function or bound method
/// called through C (`f(*args)`), a generator advanced by `for`, `next()` or `yield from`.
/// Anything else (`sorted(key=f)`, `map(f, ...)`, callbacks) would lose what the C code
/// does after the inner frame returns: refuse it, naming both frames.
fn check_called_directly(graph: &ObjectGraph, inner: &FrameInfo, outer: &FrameInfo, op: &str, nargs: usize, outer_code: &CodeInfo) -> Result<()> {
    let Value::Code(inner_code) = &graph.get(inner.code).value else { return Ok(()) };
    let describe = |c: &CodeInfo, f: &FrameInfo| format!("{} ({}:{})", c.qualname, c.filename, f.line.unwrap_or(0));
    // The callable's possible slots, by how each call instruction lays out its inputs.
    let len = outer.stack.len();
    let back: Vec<usize> = match op {
        // The iterator (FOR_ITER) or receiver (SEND) must be the inner generator itself:
        // one pulled through a C iterator (`map`, `enumerate`, `zip` over a generator)
        // would hand its value to the loop without the wrapper's work.
        "FOR_ITER" | "SEND" | "YIELD_FROM" if inner.generator.is_some() => vec![1, 2],
        "CALL" | "PRECALL" => vec![nargs + 2, nargs + 1],
        "CALL_KW" => vec![nargs + 3, nargs + 2],
        "CALL_FUNCTION_EX" => vec![2 + (nargs & 1), 3 + (nargs & 1)],
        _ => vec![],
    };
    let inputs: Vec<ObjId> = back.iter().filter_map(|&b| len.checked_sub(b)).filter_map(|i| outer.stack.get(i).copied().flatten()).collect();
    let runs_inner = |id: ObjId| -> bool {
        match &graph.get(id).value {
            Value::Function { code, .. } => *code == inner.code,
            Value::Method { func, .. } => matches!(&graph.get(*func).value, Value::Function { code, .. } if *code == inner.code),
            Value::BuiltinFunction { name, self_: None, .. } => name == "next" && inner.generator.is_some(),
            // `gen.send(value)` resumes the generator like `next(gen)` does.
            Value::BuiltinFunction { name, self_: Some(owner), .. } => {
                matches!(name.as_str(), "send" | "__next__") && inner.generator == Some(*owner)
            }
            _ => false,
        }
    };
    // `gen.send(v)` (a method of the generator itself, which sits in the self slot) resumes
    // the generator like `next(gen)` does.
    let method_of_inner_generator = inner.generator.is_some_and(|g| inputs.contains(&g));
    if method_of_inner_generator || inputs.iter().any(|&id| runs_inner(id)) {
        return Ok(());
    }
    let callee = inputs
        .iter()
        .rev()
        .find(|&&id| !matches!(graph.get(id).value, Value::None | Value::Int { .. } | Value::Str(_)))
        .map(|&id| crate::repr::repr(graph, id))
        .unwrap_or_else(|| "C code".into());
    Err(ResumeError::CalledFromC { inner: describe(inner_code, inner), callee, outer: describe(outer_code, outer) })
}

/// `inner` is an `__init__` called by `outer` instantiating a class: the instance.
fn init_instance(graph: &ObjectGraph, inner: &FrameInfo, outer: &FrameInfo, nargs: usize) -> Option<ObjId> {
    let Value::Code(code) = &graph.get(inner.code).value else { return None };
    if code.name != "__init__" {
        return None;
    }
    let instance = (*inner.localsplus.first()?)?;
    let class = graph.get(instance).type_id?;
    // The class is among the call's inputs at the top of the caller's stack.
    let inputs = outer.stack.iter().rev().take(nargs + 3);
    inputs.flatten().any(|&v| v == class).then_some(instance)
}

/// If the frame is inside an `except` handler, the exception that was current before the
/// outermost such handler was entered (saved on the stack by PUSH_EXC_INFO): what the
/// caller sees once this frame returns. `Some(None)`: the saved slot holds None/NULL.
fn saved_exception(instrs: &[Instruction], entries: &[ExceptionTableEntry], f: &FrameInfo, table: &OpcodeTable, at: u32) -> Option<Option<ObjId>> {
    let mut saved = None;
    let mut at = at;
    // Follow handlers outward. A cleanup's code lies in the enclosing region; a try (or
    // with) body's handler (PUSH_EXC_INFO) starts under its own cleanup, which is not a
    // region we are in.
    let mut entering_handler = false;
    for _ in 0..64 {
        let Some(entry) = bytecode::handler_for(entries, at) else { break };
        let Some(target) = instrs.iter().position(|i| i.offset == entry.target) else { break };
        // Handler cleanups start COPY 3; POP_EXCEPT: the covering entry's depth counts the
        // saved exception as its top item.
        let is_cleanup =
            opcode_name(table, instrs[target].opcode) == "COPY" && instrs.get(target + 1).map(|i| opcode_name(table, i.opcode)) == Some("POP_EXCEPT");
        if is_cleanup && !entering_handler && entry.depth > 0 {
            saved = f.stack.get(entry.depth as usize - 1).copied();
        }
        entering_handler = opcode_name(table, instrs[target].opcode) == "PUSH_EXC_INFO";
        if entry.target == at {
            break;
        }
        at = entry.target;
    }
    saved
}

#[cfg(test)]
mod tests;
