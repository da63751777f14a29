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
        include_str!("../opcodes/testdata/fixture_3_11.txt"),
        include_str!("../opcodes/testdata/fixture_3_12.txt"),
        include_str!("../opcodes/testdata/fixture_3_13.txt"),
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
        (12u8, include_str!("../opcodes/testdata/fixture_3_12.txt"), "INSTRUMENTED_LINE"),
        (13, include_str!("../opcodes/testdata/fixture_3_13.txt"), "INSTRUMENTED_INSTRUCTION"),
        (13, include_str!("../opcodes/testdata/fixture_3_13.txt"), "ENTER_EXECUTOR"),
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
