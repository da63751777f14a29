//! Pure bytecode analyses for CPython 3.11 / 3.12 / 3.13, parametrised by the
//! per-version [`OpcodeTable`] (see `src/opcodes/`).
//!
//! All inputs may come from a corrupt or racing process: nothing here panics;
//! every index is bounds-checked. Offsets are in *code units* (2 bytes).
//!
//! Functions with the plain names (`deoptimize`, `instructions`,
//! `parse_exception_table`) are lenient and never fail; the `try_*`
//! variants report malformed input as a [`BytecodeError`].

use std::fmt;

use crate::opcodes::{JumpKind, OpKind, OpcodeTable};

mod exception_table;
mod linetable;
#[cfg(test)]
mod tests;

pub use exception_table::*;
pub use linetable::*;

/// Errors for malformed or unsupported bytecode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BytecodeError {
    /// An instruction (its EXTENDED_ARG prefix or its inline caches) runs
    /// past the end of the code.
    Truncated { offset: u32 },
    /// Opcode not defined in this CPython version.
    UnknownOpcode { offset: u32, opcode: u8 },
    /// INSTRUMENTED_LINE / INSTRUMENTED_INSTRUCTION / ENTER_EXECUTOR: the
    /// original instruction is not in the bytecode.
    Unrecoverable { offset: u32, opcode: u8 },
    /// The opcode has no defined stack effect for this oparg.
    NoStackEffect { offset: u32, opcode: u8, oparg: u32 },
    /// The stack depth would become negative.
    StackUnderflow { offset: u32, depth: u32, effect: i32 },
    /// The stack depth exceeds any sensible bound.
    StackOverflow { offset: u32 },
    /// Two paths reach an instruction with different stack depths.
    DepthConflict { offset: u32, first: u32, second: u32 },
    /// A jump or exception handler target that is not an instruction start.
    BadTarget { from: u32, target: i64 },
    /// Control falls through past the last instruction.
    FallsOffEnd { offset: u32 },
    /// A varint does not fit in 32 bits.
    VarintOverflow { byte_offset: usize },
    /// The exception table ends in the middle of an entry.
    TruncatedExceptionTable { byte_offset: usize },
}

impl fmt::Display for BytecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BytecodeError::*;
        match self {
            Truncated { offset } => write!(f, "instruction at unit {offset} runs past the end of the code"),
            UnknownOpcode { offset, opcode } => write!(f, "unknown opcode {opcode} at unit {offset}"),
            Unrecoverable { offset, opcode } => {
                write!(f, "opcode {opcode} at unit {offset} hides the original instruction (instrumentation/executor)")
            }
            NoStackEffect { offset, opcode, oparg } => {
                write!(f, "no stack effect for opcode {opcode} oparg {oparg} at unit {offset}")
            }
            StackUnderflow { offset, depth, effect } => {
                write!(f, "stack underflow at unit {offset}: depth {depth}, effect {effect}")
            }
            StackOverflow { offset } => write!(f, "stack depth overflow at unit {offset}"),
            DepthConflict { offset, first, second } => {
                write!(f, "conflicting stack depths {first} and {second} at unit {offset}")
            }
            BadTarget { from, target } => {
                write!(f, "jump/handler from unit {from} to {target} is not an instruction start")
            }
            FallsOffEnd { offset } => write!(f, "control falls off the end after unit {offset}"),
            VarintOverflow { byte_offset } => write!(f, "varint overflow at byte {byte_offset}"),
            TruncatedExceptionTable { byte_offset } => {
                write!(f, "exception table truncated at byte {byte_offset}")
            }
        }
    }
}

impl std::error::Error for BytecodeError {}

#[inline]
fn unit(code: &[u8], i: usize) -> Option<(u8, u8)> {
    Some((*code.get(2 * i)?, *code.get(2 * i + 1)?))
}

// ---------------------------------------------------------------------------
// Deoptimization
// ---------------------------------------------------------------------------

/// Lenient deoptimization of `_co_code_adaptive`: every specialized or
/// instrumented opcode is replaced by its base opcode and inline CACHE
/// entries are zeroed, so the result equals `code.co_code`. Unrecoverable or
/// undefined opcodes are copied unchanged (with no caches assumed); a
/// trailing odd byte is dropped. Use [`try_deoptimize`] / [`deoptimize_with`]
/// to detect those cases.
pub fn deoptimize(code_adaptive: &[u8], table: &OpcodeTable) -> Vec<u8> {
    deopt_core(code_adaptive, table, &mut |_, _, _| None, false).unwrap_or_default()
}

/// Strict deoptimization: fails on undefined / unrecoverable opcodes and on
/// caches running past the end.
pub fn try_deoptimize(code_adaptive: &[u8], table: &OpcodeTable) -> Result<Vec<u8>, BytecodeError> {
    deopt_core(code_adaptive, table, &mut |_, _, _| None, true)
}

/// Strict deoptimization with a resolver for opcodes whose original is not in
/// the bytecode. `resolve(unit_offset, opcode, oparg)` returns the original
/// *base or specialized* `(opcode, oparg)` (e.g. from `co_monitoring` for
/// INSTRUMENTED_LINE / INSTRUMENTED_INSTRUCTION, or from the executor for
/// ENTER_EXECUTOR); returning `None` makes the call fail.
pub fn deoptimize_with<F>(code_adaptive: &[u8], table: &OpcodeTable, mut resolve: F) -> Result<Vec<u8>, BytecodeError>
where
    F: FnMut(u32, u8, u8) -> Option<(u8, u8)>,
{
    deopt_core(code_adaptive, table, &mut resolve, true)
}

fn deopt_core(
    code: &[u8],
    table: &OpcodeTable,
    resolve: &mut dyn FnMut(u32, u8, u8) -> Option<(u8, u8)>,
    strict: bool,
) -> Result<Vec<u8>, BytecodeError> {
    let n = code.len() / 2;
    let mut out = Vec::with_capacity(n * 2);
    let mut i = 0usize;
    while i < n {
        let (op, arg) = match unit(code, i) {
            Some(u) => u,
            None => break,
        };
        let off = i as u32;
        let (mut op, mut arg) = (op, arg);
        let mut kind = table.info(op).kind;
        if matches!(kind, OpKind::Unrecoverable | OpKind::Undefined) {
            if let Some((o, a)) = resolve(off, op, arg) {
                op = o;
                arg = a;
                kind = table.info(op).kind;
            }
        }
        let (base, caches) = match kind {
            OpKind::Base | OpKind::Specialized | OpKind::Instrumented => {
                let info = table.info(op);
                (info.base, info.caches as usize)
            }
            OpKind::Undefined if strict => return Err(BytecodeError::UnknownOpcode { offset: off, opcode: op }),
            OpKind::Unrecoverable if strict => return Err(BytecodeError::Unrecoverable { offset: off, opcode: op }),
            _ => (op, 0),
        };
        out.push(base);
        out.push(arg);
        i += 1;
        let avail = n - i;
        if caches > avail && strict {
            return Err(BytecodeError::Truncated { offset: off });
        }
        let c = caches.min(avail);
        out.resize(out.len() + 2 * c, 0u8);
        i += c;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Instructions
// ---------------------------------------------------------------------------

/// One logical instruction: EXTENDED_ARG prefixes folded, caches included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Start (first EXTENDED_ARG prefix, if any), in code units.
    pub offset: u32,
    /// Base (deoptimized) opcode.
    pub opcode: u8,
    /// Full oparg with EXTENDED_ARG folded in (raw byte even if the opcode
    /// takes no argument).
    pub arg: u32,
    /// Size in code units: EXTENDED_ARG prefixes + 1 + caches.
    pub size: u32,
    /// Number of EXTENDED_ARG prefix units.
    pub extended_args: u32,
    /// Number of inline cache units included in `size`.
    pub caches: u32,
    /// Opcode as found in the input (possibly specialized/instrumented).
    pub raw_opcode: u8,
}

impl Instruction {
    /// Offset of the opcode itself (after EXTENDED_ARG prefixes): what `dis`
    /// reports as the instruction offset and what `frame.f_lasti` points at.
    pub fn op_offset(&self) -> u32 {
        self.offset + self.extended_args
    }

    /// Offset of the next instruction.
    pub fn next_offset(&self) -> u32 {
        self.offset.saturating_add(self.size)
    }

    /// Jump target as `dis` reports it (and as the compiler's stack-depth
    /// computation uses), in code units; `None` if not a jump. May be out of
    /// range for corrupt code (negative targets are returned as `None`).
    pub fn jump_target(&self, table: &OpcodeTable) -> Option<u32> {
        let info = table.info(self.opcode);
        let after = self.op_offset() as i64 + 1 + info.caches as i64;
        let t = match info.jump {
            JumpKind::None => return None,
            JumpKind::Forward => after + self.arg as i64,
            JumpKind::Backward => after - self.arg as i64,
        };
        u32::try_from(t).ok()
    }

    /// Where the *interpreter* continues when the jump is taken (differs from
    /// [`Instruction::jump_target`] for FOR_ITER on 3.12/3.13, which skips END_FOR).
    pub fn exec_jump_target(&self, table: &OpcodeTable) -> Option<u32> {
        let extra = table.info(self.opcode).jump_exec_extra as u32;
        self.jump_target(table)?.checked_add(extra)
    }
}

/// Lenient decoding into instructions; never fails. Undefined/unrecoverable
/// opcodes are reported as-is with no caches; sizes are clipped at the end of
/// the code. Use [`try_instructions`] to detect malformed code.
pub fn instructions(code: &[u8], table: &OpcodeTable) -> Vec<Instruction> {
    decode(code, table, false).unwrap_or_default()
}

/// Strict decoding: errors on undefined / unrecoverable opcodes and
/// truncated instructions.
pub fn try_instructions(code: &[u8], table: &OpcodeTable) -> Result<Vec<Instruction>, BytecodeError> {
    decode(code, table, true)
}

fn decode(code: &[u8], table: &OpcodeTable, strict: bool) -> Result<Vec<Instruction>, BytecodeError> {
    let n = code.len() / 2;
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while i < n {
        let start = i;
        let mut arg: u32 = 0;
        let mut ext = 0u32;
        let (raw, base, caches) = loop {
            let (op, a) = match unit(code, i) {
                Some(u) => u,
                None => return Ok(out),
            };
            arg = (arg << 8) | a as u32;
            let info = table.info(op);
            let base = match info.kind {
                OpKind::Base | OpKind::Specialized | OpKind::Instrumented => info.base,
                OpKind::Undefined if strict => return Err(BytecodeError::UnknownOpcode { offset: i as u32, opcode: op }),
                OpKind::Unrecoverable if strict => return Err(BytecodeError::Unrecoverable { offset: i as u32, opcode: op }),
                _ => op,
            };
            let caches = if matches!(info.kind, OpKind::Undefined | OpKind::Unrecoverable) { 0 } else { info.caches as usize };
            if base == table.extended_arg && info.kind != OpKind::Undefined {
                if i + 1 < n {
                    ext += 1;
                    i += 1;
                    continue;
                }
                if strict {
                    return Err(BytecodeError::Truncated { offset: start as u32 });
                }
            }
            break (op, base, caches);
        };
        i += 1;
        let avail = n - i;
        if caches > avail && strict {
            return Err(BytecodeError::Truncated { offset: start as u32 });
        }
        let c = caches.min(avail);
        i += c;
        out.push(Instruction {
            offset: start as u32,
            opcode: base,
            arg,
            size: (i - start) as u32,
            extended_args: ext,
            caches: c as u32,
            raw_opcode: raw,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Stack depth
// ---------------------------------------------------------------------------

/// Upper bound on the depth we accept (CPython's frames are far smaller).
const MAX_DEPTH: i64 = 1 << 24;

/// Value-stack depth *before* each instruction, indexed by code unit (the
/// instruction start, i.e. its first EXTENDED_ARG prefix); `None` for
/// unreachable instructions and for units that are not instruction starts.
///
/// Abstract interpretation over fall-through and jump edges (using the `dis`
/// jump target and `dis.stack_effect` semantics, as the compiler does) and
/// over exception edges: any reachable instruction covered by an exception
/// table entry makes its handler reachable with
/// [`ExceptionTableEntry::handler_depth`]. `code` may be adaptive
/// (specialized/instrumented opcodes are mapped to their base).
pub fn stack_depths(code: &[u8], exception_table: &[ExceptionTableEntry], table: &OpcodeTable) -> Result<Vec<Option<u32>>, BytecodeError> {
    let instrs = try_instructions(code, table)?;
    stack_depths_for(&instrs, code.len() / 2, exception_table, table)
}

fn stack_depths_for(
    instrs: &[Instruction],
    n_units: usize,
    exception_table: &[ExceptionTableEntry],
    table: &OpcodeTable,
) -> Result<Vec<Option<u32>>, BytecodeError> {
    const NONE: u32 = u32::MAX;
    // unit -> instruction index (only at instruction starts)
    let mut index = vec![NONE; n_units];
    for (k, ins) in instrs.iter().enumerate() {
        if let Some(slot) = index.get_mut(ins.offset as usize) {
            *slot = k as u32;
        }
    }
    // unit -> exception entry (first match wins, as in the interpreter)
    let mut handler = vec![NONE; n_units];
    for (k, e) in exception_table.iter().enumerate() {
        let s = (e.start as usize).min(n_units);
        let t = (e.end as usize).min(n_units);
        for h in handler.iter_mut().take(t).skip(s) {
            if *h == NONE {
                *h = k as u32;
            }
        }
    }
    let mut depth: Vec<Option<u32>> = vec![None; instrs.len()];
    let mut work: Vec<usize> = Vec::new();

    let push = |from: u32, target: i64, d: i64, depth: &mut Vec<Option<u32>>, work: &mut Vec<usize>| {
        if !(0..=MAX_DEPTH).contains(&d) {
            return Err(BytecodeError::StackOverflow { offset: from });
        }
        let idx = usize::try_from(target)
            .ok()
            .and_then(|t| index.get(t).copied())
            .filter(|&k| k != NONE)
            .ok_or(BytecodeError::BadTarget { from, target })? as usize;
        let d = d as u32;
        match depth[idx] {
            None => {
                depth[idx] = Some(d);
                work.push(idx);
                Ok(())
            }
            Some(old) if old == d => Ok(()),
            Some(old) => Err(BytecodeError::DepthConflict { offset: target as u32, first: old, second: d }),
        }
    };

    if instrs.is_empty() {
        return Ok(vec![None; n_units]);
    }
    push(0, 0, 0, &mut depth, &mut work)?;
    while let Some(k) = work.pop() {
        let ins = &instrs[k];
        let d = depth[k].unwrap_or(0) as i64;
        let info = table.info(ins.opcode);
        let at = ins.op_offset();
        // Exception edge.
        if let Some(&h) = handler.get(at as usize) {
            if h != NONE {
                let e = &exception_table[h as usize];
                push(at, e.target as i64, e.handler_depth() as i64, &mut depth, &mut work)?;
            }
        }
        let eff = |jump: bool| {
            table.stack_effect(ins.opcode, ins.arg, jump).ok_or(BytecodeError::NoStackEffect { offset: at, opcode: ins.opcode, oparg: ins.arg })
        };
        let check = |e: i32| {
            let nd = d + e as i64;
            if nd < 0 {
                Err(BytecodeError::StackUnderflow { offset: at, depth: d as u32, effect: e })
            } else {
                Ok(nd)
            }
        };
        if info.jump != JumpKind::None {
            let after = at as i64 + 1 + info.caches as i64;
            let target = match info.jump {
                JumpKind::Backward => after - ins.arg as i64,
                _ => after + ins.arg as i64,
            };
            let nd = check(eff(true)?)?;
            push(at, target, nd, &mut depth, &mut work)?;
        }
        if !info.terminates {
            let nd = check(eff(false)?)?;
            let next = ins.next_offset();
            if next as usize >= n_units {
                return Err(BytecodeError::FallsOffEnd { offset: at });
            }
            push(at, next as i64, nd, &mut depth, &mut work)?;
        }
    }
    let mut out = vec![None; n_units];
    for (k, ins) in instrs.iter().enumerate() {
        if let Some(slot) = out.get_mut(ins.offset as usize) {
            *slot = depth[k];
        }
    }
    Ok(out)
}

/// Stack depth before the instruction containing `offset_units` (any unit of
/// the instruction: EXTENDED_ARG prefix, opcode or cache). `Ok(None)` if the
/// instruction is unreachable or the offset is out of range.
pub fn depth_at(code: &[u8], exception_table: &[ExceptionTableEntry], table: &OpcodeTable, offset_units: u32) -> Result<Option<u32>, BytecodeError> {
    let instrs = try_instructions(code, table)?;
    let depths = stack_depths_for(&instrs, code.len() / 2, exception_table, table)?;
    let pos = instrs.partition_point(|i| i.next_offset() <= offset_units);
    Ok(match instrs.get(pos) {
        Some(i) if i.offset <= offset_units => depths.get(i.offset as usize).copied().flatten(),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Code flags, and writing exception tables (the restore engine's prologue)
// ---------------------------------------------------------------------------

/// `co_flags` bits (the same in 3.11–3.13): the restore engine's one source for them.
pub const CO_VARARGS: u32 = 0x04;
pub const CO_VARKEYWORDS: u32 = 0x08;
pub const CO_GENERATOR: u32 = 0x20;
/// `co_localspluskinds` bits (the same in 3.11–3.13).
pub const CO_FAST_LOCAL: u8 = 0x20;
pub const CO_FAST_CELL: u8 = 0x40;
pub const CO_FAST_FREE: u8 = 0x80;
