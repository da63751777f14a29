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
// Exception table
// ---------------------------------------------------------------------------

/// One entry of `co_exceptiontable`, in code units; `end` is exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionTableEntry {
    pub start: u32,
    pub end: u32,
    pub target: u32,
    pub depth: u32,
    pub lasti: bool,
}

impl ExceptionTableEntry {
    /// Stack depth on entry to the handler: `depth`, +1 for the saved
    /// `lasti` if `lasti`, +1 for the pushed exception.
    pub fn handler_depth(&self) -> u32 {
        self.depth.saturating_add(self.lasti as u32 + 1)
    }
}

/// Big-endian 6-bit varint (exception table flavour): 0x40 = continuation.
fn read_exc_varint(bytes: &[u8], pos: &mut usize) -> Result<Option<u32>, BytecodeError> {
    let start = *pos;
    let mut b = match bytes.get(*pos) {
        Some(&b) => b,
        None => return Ok(None),
    };
    *pos += 1;
    let mut val: u64 = (b & 63) as u64;
    while b & 64 != 0 {
        b = match bytes.get(*pos) {
            Some(&b) => b,
            None => return Ok(None),
        };
        *pos += 1;
        val = (val << 6) | (b & 63) as u64;
        if val > u32::MAX as u64 {
            return Err(BytecodeError::VarintOverflow { byte_offset: start });
        }
    }
    Ok(Some(val as u32))
}

fn parse_exc_core(bytes: &[u8], strict: bool) -> Result<Vec<ExceptionTableEntry>, BytecodeError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let entry_start = pos;
        let mut fields = [0u32; 4];
        for (k, f) in fields.iter_mut().enumerate() {
            match read_exc_varint(bytes, &mut pos)? {
                Some(v) => *f = v,
                None => {
                    if strict && !(k == 0 && entry_start == bytes.len()) {
                        return Err(BytecodeError::TruncatedExceptionTable { byte_offset: entry_start });
                    }
                    return Ok(out);
                }
            }
        }
        let [start, len, target, dl] = fields;
        let end = match start.checked_add(len) {
            Some(e) => e,
            None => return Err(BytecodeError::VarintOverflow { byte_offset: entry_start }),
        };
        out.push(ExceptionTableEntry { start, end, target, depth: dl >> 1, lasti: dl & 1 != 0 });
    }
}

/// Parse `co_exceptiontable` exactly like `dis._parse_exception_table`
/// (a trailing incomplete entry is ignored). On a varint overflow the entries
/// parsed so far are returned.
pub fn parse_exception_table(bytes: &[u8]) -> Vec<ExceptionTableEntry> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let mut fields = [0u32; 4];
        for f in fields.iter_mut() {
            match read_exc_varint(bytes, &mut pos) {
                Ok(Some(v)) => *f = v,
                _ => return out,
            }
        }
        let [start, len, target, dl] = fields;
        let Some(end) = start.checked_add(len) else { return out };
        out.push(ExceptionTableEntry { start, end, target, depth: dl >> 1, lasti: dl & 1 != 0 });
    }
}

/// Strict variant of [`parse_exception_table`]: a truncated entry or an
/// overflowing varint is an error.
pub fn try_parse_exception_table(bytes: &[u8]) -> Result<Vec<ExceptionTableEntry>, BytecodeError> {
    parse_exc_core(bytes, true)
}

/// The handler for an instruction at `offset_units`, as the interpreter looks
/// it up (first entry with `start <= offset < end`).
pub fn handler_for(entries: &[ExceptionTableEntry], offset_units: u32) -> Option<&ExceptionTableEntry> {
    entries.iter().find(|e| e.start <= offset_units && offset_units < e.end)
}

// ---------------------------------------------------------------------------
// Location table (PEP 626/657, Objects/locations.md)
// ---------------------------------------------------------------------------

/// A range of code units sharing one line (`None`: no location).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRange {
    pub start: u32,
    pub end: u32,
    pub line: Option<i32>,
}

/// Little-endian 6-bit varint (location table flavour).
fn read_loc_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut b = *bytes.get(*pos)?;
    *pos += 1;
    let mut val = (b & 63) as u64;
    let mut shift = 0u32;
    while b & 64 != 0 {
        b = *bytes.get(*pos)?;
        *pos += 1;
        shift += 6;
        if shift >= 64 {
            return None;
        }
        val |= ((b & 63) as u64) << shift;
    }
    Some(val)
}

fn read_loc_svarint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let u = read_loc_varint(bytes, pos)?;
    Some(if u & 1 != 0 { -((u >> 1) as i64) } else { (u >> 1) as i64 })
}

/// Decode the location table into line ranges (one per entry, not merged).
/// Decoding stops at the first malformed entry.
pub fn line_ranges(linetable: &[u8], first_line: i32) -> Vec<LineRange> {
    let mut out = Vec::new();
    let mut line = first_line as i64;
    let mut addr: u32 = 0;
    let mut pos = 0usize;
    while let Some(&first) = linetable.get(pos) {
        if first & 0x80 == 0 {
            break; // not an entry start: corrupt
        }
        let code = (first >> 3) & 15;
        let len = (first & 7) as u32 + 1;
        let mut p = pos + 1;
        let delta: i64 = match code {
            15 => 0,
            13 | 14 => match read_loc_svarint(linetable, &mut p) {
                Some(d) => d,
                None => break,
            },
            10..=12 => (code - 10) as i64,
            _ => 0,
        };
        line = line.saturating_add(delta);
        let l = if code == 15 { None } else { i32::try_from(line).ok() };
        let Some(end) = addr.checked_add(len) else { break };
        out.push(LineRange { start: addr, end, line: l });
        addr = end;
        // Skip the rest of the entry (all following bytes have bit 7 clear).
        pos += 1;
        while let Some(&b) = linetable.get(pos) {
            if b & 0x80 != 0 {
                break;
            }
            pos += 1;
        }
    }
    out
}

/// Line number of the instruction at `offset_units` (as `co_lines()` /
/// `co_positions()` report it), `None` for no location or out of range.
pub fn line_for_offset(linetable: &[u8], first_line: i32, offset_units: u32) -> Option<i32> {
    // Same decoding as `line_ranges`, stopping at the matching entry.
    let mut line = first_line as i64;
    let mut addr: u32 = 0;
    let mut pos = 0usize;
    while let Some(&first) = linetable.get(pos) {
        if first & 0x80 == 0 {
            return None;
        }
        let code = (first >> 3) & 15;
        let len = (first & 7) as u32 + 1;
        let mut p = pos + 1;
        let delta: i64 = match code {
            15 => 0,
            13 | 14 => read_loc_svarint(linetable, &mut p)?,
            10..=12 => (code - 10) as i64,
            _ => 0,
        };
        line = line.saturating_add(delta);
        let end = addr.checked_add(len)?;
        if offset_units >= addr && offset_units < end {
            return if code == 15 { None } else { i32::try_from(line).ok() };
        }
        addr = end;
        pos += 1;
        while let Some(&b) = linetable.get(pos) {
            if b & 0x80 != 0 {
                break;
            }
            pos += 1;
        }
    }
    None
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
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::table_for;

    fn hex(s: &str) -> Vec<u8> {
        if s == "-" {
            return Vec::new();
        }
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    fn nums(s: &str) -> Vec<Vec<i64>> {
        s.split_whitespace().map(|t| t.split(':').map(|x| x.parse().unwrap()).collect()).collect()
    }

    /// One code object exported by `gen_opcode_tables.py --export-fixtures`.
    #[derive(Default)]
    struct Rec {
        name: String,
        firstline: i32,
        stacksize: u32,
        code: Vec<u8>,
        adaptive: Option<Vec<u8>>,
        exc: Vec<u8>,
        lines: Vec<u8>,
        instrs: Vec<Vec<i64>>,
        jumps: Vec<Vec<i64>>,
        excs: Vec<Vec<i64>>,
        linenos: Vec<Vec<i64>>,
    }

    fn parse_fixture(text: &str) -> ((u8, u8), Vec<Rec>) {
        let mut ver = (0, 0);
        let mut recs: Vec<Rec> = Vec::new();
        for line in text.lines() {
            let (tag, rest) = line.split_at(1.min(line.len()));
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match tag {
                "V" => {
                    let v = nums(rest);
                    ver = (v[0][0] as u8, v[1][0] as u8);
                }
                "C" => recs.push(Rec { name: rest.to_string(), ..Default::default() }),
                _ => {
                    let r = recs.last_mut().expect("record");
                    match tag {
                        "F" => {
                            let v = nums(rest);
                            r.firstline = v[0][0] as i32;
                            r.stacksize = v[1][0] as u32;
                        }
                        "B" => r.code = hex(rest),
                        "A" => r.adaptive = if rest == "-" { None } else { Some(hex(rest)) },
                        "E" => r.exc = hex(rest),
                        "L" => r.lines = hex(rest),
                        "I" => r.instrs = nums(rest),
                        "J" => r.jumps = nums(rest),
                        "X" => r.excs = nums(rest),
                        "N" => r.linenos = nums(rest),
                        _ => {}
                    }
                }
            }
        }
        (ver, recs)
    }

    #[derive(Default, Debug)]
    struct Stats {
        records: usize,
        deopt_checked: usize,
        deopt_bad: usize,
        instr_bad: usize,
        jump_bad: usize,
        exc_bad: usize,
        line_bad: usize,
        depth_err: usize,
        depth_over: usize,
        depth_equal: usize,
        depth_below: usize,
        handler_checked: usize,
        handler_bad: usize,
        adaptive_depth_bad: usize,
        for_iter_bad: usize,
        failures: Vec<String>,
    }

    fn check(text: &str) -> Stats {
        let (ver, recs) = parse_fixture(text);
        let t = table_for(ver.0, ver.1).expect("table");
        let mut st = Stats::default();
        let fail = |st: &mut Stats, what: &str, r: &Rec, msg: String| {
            if st.failures.len() < 20 {
                st.failures.push(format!("{what} {}: {msg}", r.name));
            }
        };
        for r in &recs {
            st.records += 1;
            // deoptimize
            if let Some(a) = &r.adaptive {
                st.deopt_checked += 1;
                let d = deoptimize(a, t);
                if d != r.code || try_deoptimize(a, t).ok().as_ref() != Some(&r.code) {
                    st.deopt_bad += 1;
                    fail(&mut st, "deopt", r, String::new());
                }
            }
            // instructions
            let ins = try_instructions(&r.code, t).unwrap_or_default();
            let mine: Vec<(i64, i64, i64)> = ins
                .iter()
                .map(|i| {
                    let has = t.info(i.opcode).has_arg;
                    (i.op_offset() as i64, i.opcode as i64, if has { i.arg as i64 } else { -1 })
                })
                .collect();
            let theirs: Vec<(i64, i64, i64)> = r.instrs.iter().map(|v| (v[0], v[1], v[2])).collect();
            if mine != theirs {
                st.instr_bad += 1;
                fail(&mut st, "instr", r, format!("{} vs {}", mine.len(), theirs.len()));
            }
            if let Some(a) = &r.adaptive {
                let ai = try_instructions(a, t).unwrap_or_default();
                let strip = |v: &[Instruction]| v.iter().map(|i| (i.offset, i.opcode, i.arg, i.size)).collect::<Vec<_>>();
                if strip(&ai) != strip(&ins) {
                    st.instr_bad += 1;
                    fail(&mut st, "instr-adaptive", r, String::new());
                }
            }
            // jumps
            let mj: Vec<(i64, i64)> = ins.iter().filter_map(|i| i.jump_target(t).map(|x| (i.op_offset() as i64, x as i64))).collect();
            let tj: Vec<(i64, i64)> = r.jumps.iter().map(|v| (v[0], v[1])).collect();
            if mj != tj {
                st.jump_bad += 1;
                fail(&mut st, "jump", r, format!("{mj:?} vs {tj:?}"));
            }
            for i in &ins {
                if t.info(i.opcode).jump_exec_extra > 0 {
                    let tgt = i.jump_target(t).unwrap_or(0) as usize;
                    let end_for = t.opcode_by_name("END_FOR").unwrap();
                    let pop_top = t.opcode_by_name("POP_TOP").unwrap();
                    let ok =
                        r.code.get(2 * tgt) == Some(&end_for) && (t.info(i.opcode).jump_exec_extra == 1 || r.code.get(2 * tgt + 2) == Some(&pop_top));
                    if !ok {
                        st.for_iter_bad += 1;
                    }
                }
            }
            // exception table
            let exc = parse_exception_table(&r.exc);
            let me: Vec<Vec<i64>> = exc.iter().map(|e| vec![e.start as i64, e.end as i64, e.target as i64, e.depth as i64, e.lasti as i64]).collect();
            if me != r.excs || try_parse_exception_table(&r.exc).ok() != Some(exc.clone()) {
                st.exc_bad += 1;
                fail(&mut st, "exc", r, String::new());
            }
            // lines
            let ranges = line_ranges(&r.lines, r.firstline);
            for v in &r.linenos {
                let want = if v[1] < 0 { None } else { Some(v[1] as i32) };
                let got = line_for_offset(&r.lines, r.firstline, v[0] as u32);
                let via = ranges.iter().find(|x| x.start as i64 <= v[0] && (v[0] as u32) < x.end).and_then(|x| x.line);
                if got != want || via != want {
                    st.line_bad += 1;
                    fail(&mut st, "line", r, format!("unit {}: {got:?} vs {want:?}", v[0]));
                    break;
                }
            }
            // stack depths
            match stack_depths(&r.code, &exc, t) {
                Err(e) => {
                    st.depth_err += 1;
                    fail(&mut st, "depth", r, e.to_string());
                }
                Ok(d) => {
                    let max = d.iter().flatten().copied().max().unwrap_or(0);
                    if max > r.stacksize {
                        st.depth_over += 1;
                        fail(&mut st, "depth>stacksize", r, format!("{max} > {}", r.stacksize));
                    } else if max == r.stacksize {
                        st.depth_equal += 1;
                    } else {
                        st.depth_below += 1;
                    }
                    for e in &exc {
                        if let Some(Some(h)) = d.get(e.target as usize) {
                            st.handler_checked += 1;
                            if *h != e.handler_depth() {
                                st.handler_bad += 1;
                            }
                        }
                    }
                    // depth_at agrees at every instruction unit
                    if let Some(i) = ins.get(ins.len() / 2) {
                        let want = d[i.offset as usize];
                        for u in i.offset..i.next_offset() {
                            if depth_at(&r.code, &exc, t, u).ok().flatten() != want {
                                st.adaptive_depth_bad += 1;
                            }
                        }
                    }
                    if let Some(a) = &r.adaptive {
                        if stack_depths(a, &exc, t).ok().as_ref() != Some(&d) {
                            st.adaptive_depth_bad += 1;
                            fail(&mut st, "adaptive-depth", r, String::new());
                        }
                    }
                }
            }
        }
        st
    }

    fn assert_clean(st: &Stats) {
        assert!(st.records > 0);
        assert_eq!((st.deopt_bad, st.instr_bad, st.jump_bad, st.exc_bad, st.line_bad), (0, 0, 0, 0, 0), "{:#?}", st);
        assert_eq!((st.depth_err, st.depth_over, st.handler_bad), (0, 0, 0), "{:#?}", st);
        assert_eq!((st.adaptive_depth_bad, st.for_iter_bad), (0, 0), "{:#?}", st);
    }

    #[test]
    fn committed_fixtures() {
        for text in [
            include_str!("opcodes/testdata/fixture_3_11.txt"),
            include_str!("opcodes/testdata/fixture_3_12.txt"),
            include_str!("opcodes/testdata/fixture_3_13.txt"),
        ] {
            let st = check(text);
            assert!(st.deopt_checked > 0);
            assert_clean(&st);
        }
    }

    /// Full check against fixtures exported by
    /// `gen_opcode_tables.py --export-fixtures`; run with
    /// `PYTELEPORT_BYTECODE_FIXTURES="/tmp/a.txt /tmp/b.txt" cargo test -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn exported_fixtures() {
        let files = std::env::var("PYTELEPORT_BYTECODE_FIXTURES").unwrap_or_default();
        for f in files.split_whitespace() {
            let text = std::fs::read_to_string(f).unwrap();
            let st = check(&text);
            println!(
                "{f}: records {} deopt {}/{} bad, instr bad {}, jump bad {}, exc bad {}, line bad {}, \
                 depth errors {}, max>stacksize {}, max==stacksize {}, max<stacksize {}, \
                 handlers {} ({} bad), depth_at/adaptive bad {}, for_iter bad {}",
                st.records,
                st.deopt_bad,
                st.deopt_checked,
                st.instr_bad,
                st.jump_bad,
                st.exc_bad,
                st.line_bad,
                st.depth_err,
                st.depth_over,
                st.depth_equal,
                st.depth_below,
                st.handler_checked,
                st.handler_bad,
                st.adaptive_depth_bad,
                st.for_iter_bad
            );
            for m in &st.failures {
                println!("  {m}");
            }
            assert_clean(&st);
        }
    }

    #[test]
    fn tables_exist() {
        for minor in [11u8, 12, 13] {
            let t = table_for(3, minor).unwrap();
            assert_eq!(t.version.1, minor);
            assert_eq!(t.info(t.extended_arg).name, "EXTENDED_ARG");
            assert_eq!(t.info(t.cache).name, "CACHE");
            // UNPACK_EX: (oparg & 0xFF) + (oparg >> 8)
            let u = t.opcode_by_name("UNPACK_EX").unwrap();
            assert_eq!(t.stack_effect(u, 0x0302, false), Some(5));
            let bt = t.opcode_by_name("BUILD_TUPLE").unwrap();
            assert_eq!(t.stack_effect(bt, 300, false), Some(-299));
            // Specialized opcodes carry their base's data.
            let lg = t.opcode_by_name("LOAD_GLOBAL_MODULE").unwrap();
            assert_eq!(t.info(lg).kind, OpKind::Specialized);
            assert_eq!(t.info(lg).base, t.opcode_by_name("LOAD_GLOBAL").unwrap());
            assert_eq!(t.info(lg).caches, if minor == 11 { 5 } else { 4 });
            // LOAD_GLOBAL pushes NULL when the low bit is set (also above 255).
            assert_eq!(t.stack_effect(lg, (300 << 1) | 1, false), Some(2));
        }
        assert!(table_for(3, 10).is_none());
        assert!(table_for(3, 13).unwrap().opcode_by_name("ENTER_EXECUTOR").is_some());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for minor in [11u8, 12, 13] {
            let t = table_for(3, minor).unwrap();
            for len in 0..200usize {
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let _ = deoptimize(&bytes, t);
                let _ = try_deoptimize(&bytes, t);
                let _ = instructions(&bytes, t);
                let _ = try_instructions(&bytes, t);
                let exc = parse_exception_table(&bytes);
                let _ = try_parse_exception_table(&bytes);
                let _ = line_ranges(&bytes, i32::MAX - 3);
                for u in 0..(len as u32 / 2 + 2) {
                    let _ = line_for_offset(&bytes, i32::MIN + 3, u);
                }
                let _ = stack_depths(&bytes, &exc, t);
                let _ = depth_at(&bytes, &exc, t, 3);
                // Valid opcodes only (CACHE bytes replaced by NOP-ish base ops).
                let code: Vec<u8> = bytes
                    .chunks(2)
                    .flat_map(|c| {
                        let op = c[0];
                        let op = if t.info(op).kind == OpKind::Base { op } else { t.extended_arg };
                        [op, *c.get(1).unwrap_or(&0)]
                    })
                    .collect();
                let _ = stack_depths(&code, &exc, t);
            }
        }
    }

    #[test]
    fn unrecoverable_opcodes() {
        for (minor, text, name) in [
            (12u8, include_str!("opcodes/testdata/fixture_3_12.txt"), "INSTRUMENTED_LINE"),
            (13, include_str!("opcodes/testdata/fixture_3_13.txt"), "INSTRUMENTED_INSTRUCTION"),
            (13, include_str!("opcodes/testdata/fixture_3_13.txt"), "ENTER_EXECUTOR"),
        ] {
            let t = table_for(3, minor).unwrap();
            let (_, recs) = parse_fixture(text);
            let r = &recs[0];
            let ins = try_instructions(&r.code, t).unwrap();
            let victim = ins[ins.len() / 2];
            let at = victim.op_offset() as usize;
            let hidden = t.opcode_by_name(name).unwrap();
            assert_eq!(t.info(hidden).kind, OpKind::Unrecoverable);
            let mut code = r.code.clone();
            code[2 * at] = hidden;
            code[2 * at + 1] = 0xEE;
            assert!(matches!(try_deoptimize(&code, t), Err(BytecodeError::Unrecoverable { .. })));
            assert!(try_instructions(&code, t).is_err());
            assert!(stack_depths(&code, &[], t).is_err());
            // Lenient variants still return something.
            assert_eq!(deoptimize(&code, t).len(), code.len());
            let orig = (r.code[2 * at], r.code[2 * at + 1]);
            let fixed = deoptimize_with(&code, t, |u, op, _| (u as usize == at && op == hidden).then_some(orig)).unwrap();
            assert_eq!(fixed, r.code);
        }
    }

    #[test]
    fn exception_table_varints() {
        // start=2 (0x82 has the start bit), len=4, target=0x41 (two chunks), depth 1 + lasti
        let bytes = [0x82, 0x04, 0x41, 0x01, 0x03];
        let e = parse_exception_table(&bytes);
        assert_eq!(e, vec![ExceptionTableEntry { start: 2, end: 6, target: 65, depth: 1, lasti: true }]);
        assert_eq!(e[0].handler_depth(), 3);
        assert!(try_parse_exception_table(&bytes[..3]).is_err());
        assert!(parse_exception_table(&bytes[..3]).is_empty());
    }
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

/// One exception-table varint: 6-bit chunks, most significant first, 0x40 on every chunk
/// but the last, 0x80 on the first byte of an entry.
fn write_exc_varint(out: &mut Vec<u8>, value: u32, entry_start: bool) {
    let mut chunks = vec![(value & 63) as u8];
    let mut v = value >> 6;
    while v != 0 {
        chunks.push((v & 63) as u8);
        v >>= 6;
    }
    chunks.reverse();
    let last = chunks.len() - 1;
    for (i, c) in chunks.into_iter().enumerate() {
        let mut b = c | if i < last { 64 } else { 0 };
        if i == 0 && entry_start {
            b |= 128;
        }
        out.push(b);
    }
}

/// `co_exceptiontable` bytes of `entries` (the inverse of [`parse_exception_table`]).
pub fn encode_exception_table(entries: &[ExceptionTableEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        write_exc_varint(&mut out, e.start, true);
        write_exc_varint(&mut out, e.end - e.start, false);
        write_exc_varint(&mut out, e.target, false);
        write_exc_varint(&mut out, (e.depth << 1) | e.lasti as u32, false);
    }
    out
}

/// The exception table of the same code with `units` code units put in front of it:
/// every range and target moves by `units`.
pub fn shift_exception_table(bytes: &[u8], units: u32) -> Vec<u8> {
    let moved: Vec<ExceptionTableEntry> = parse_exception_table(bytes)
        .into_iter()
        .map(|e| ExceptionTableEntry { start: e.start + units, end: e.end + units, target: e.target + units, ..e })
        .collect();
    encode_exception_table(&moved)
}

#[cfg(test)]
mod exception_table_writing {
    use super::*;

    #[test]
    fn encode_inverts_parse_and_shift_moves_every_offset() {
        let bytes = [0x82, 0x04, 0x41, 0x01, 0x03];
        assert_eq!(encode_exception_table(&parse_exception_table(&bytes)), bytes);
        let shifted = shift_exception_table(&bytes, 4);
        assert_eq!(parse_exception_table(&shifted), vec![ExceptionTableEntry { start: 6, end: 10, target: 69, depth: 1, lasti: true }]);
        // A value of several chunks: 0x1000 = 1, 0, 0 in 6-bit chunks.
        let e = [ExceptionTableEntry { start: 0x1000, end: 0x1001, target: 0, depth: 0, lasti: false }];
        let enc = encode_exception_table(&e);
        assert_eq!(&enc[..3], &[0x80 | 0x40 | 1, 0x40, 0]);
        assert_eq!(parse_exception_table(&enc), e);
        assert!(shift_exception_table(&[], 4).is_empty());
    }
}
