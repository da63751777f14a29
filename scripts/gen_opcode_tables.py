#!/usr/bin/env python3
"""Generate src/opcodes/v3_XX.rs from the running CPython interpreter.

Run once per supported interpreter (3.11 to 3.15; 3.14 and 3.15 are Debian's, from the
sid chroot of scripts/sid-pythons):

    /root/.pyenv/versions/3.11.7/bin/python3.11 scripts/gen_opcode_tables.py
    /root/.pyenv/versions/3.12.1/bin/python3.12 scripts/gen_opcode_tables.py
    /root/.pyenv/versions/3.13.0/bin/python3.13 scripts/gen_opcode_tables.py

Optional argument: output directory (default: <repo>/src/opcodes).

Sources of truth, all taken from the interpreter that runs this script:
  * names: dis._all_opname (base + specialized names);
  * base (deoptimized) opcode: the C table _PyOpcode_Deopt parsed from the
    installed internal header (pycore_opcode.h for 3.11/3.12,
    pycore_opcode_metadata.h for 3.13), cross-checked against
    opcode._specializations. INSTRUMENTED_<X> opcodes (3.12+) map to <X> by
    name; INSTRUMENTED_LINE, INSTRUMENTED_INSTRUCTION and ENTER_EXECUTOR
    hide the original opcode (it lives in the code object's monitoring data
    or in the executor) and are marked Unrecoverable;
  * inline cache count: opcode._inline_cache_entries of the base opcode;
  * has-argument: opcode.hasarg (3.12+) or op >= HAVE_ARGUMENT (3.11);
  * jumps: opcode.hasjrel (hasjabs is empty on 3.11+); backward when the
    name contains "JUMP_BACKWARD" (same rule as dis._is_backward_jump). The
    target as `dis` reports it is  op_unit + 1 + caches +/- oparg  (3.11 has
    no jump opcodes with caches, so the same formula holds there);
  * stack effects: dis.stack_effect(op, oparg, jump=False/True).

Stack effects are stored per opcode as one of these forms, chosen by
checking each candidate against dis.stack_effect for opargs 0..=255 *and* a
sample of opargs > 255 (as produced by EXTENDED_ARG), so the rule used for
large opargs is verified, not assumed:
  * Linear(a, b):              a + b*oparg                 (any oparg)
  * LowByte(T):                T[oparg & 0xFF]             (bitfield ops:
                               MAKE_FUNCTION, FORMAT_VALUE, LOAD_GLOBAL, ...)
  * LowBytePlusHigh(T):        T[oparg & 0xFF] + (oparg >> 8)   (UNPACK_EX)
  * TableElse(T, c):           T[oparg] for oparg <= 255 else c (BUILD_SLICE)
  * Invalid:                   no stack effect defined.
Generation fails if no candidate matches.

Documented fixup: on 3.11/3.12 dis.stack_effect(RETURN_GENERATOR) is 0
because the compiler inserts the generator prologue after computing the
stack depth; at run time the frame is resumed with the sent value pushed
(consumed by the following POP_TOP), so the tables store +1 (which is what
3.13 reports natively).
"""

import dis
import importlib.util
import opcode
import os
import re
import sys
import sysconfig

V = sys.version_info
if (V.major, V.minor) not in ((3, 11), (3, 12), (3, 13), (3, 14), (3, 15)):
    sys.exit("unsupported Python version %s" % sys.version)

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = len(sys.argv) > 1 and sys.argv[1] == "--export-fixtures"
if not EXPORT:
    OUT_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "src", "opcodes")
    OUT = os.path.join(OUT_DIR, "v%d_%d.rs" % (V.major, V.minor))

all_opname = list(dis._all_opname)
all_opmap = dict(dis._all_opmap)
names = []
for i in range(256):
    n = all_opname[i]
    names.append("" if n.startswith("<") else n)
opmap = {n: i for i, n in enumerate(names) if n}


# --- base opcode ----------------------------------------------------------
def parse_deopt_header():
    inc = os.path.join(sysconfig.get_paths()["include"], "internal")
    hdr = "pycore_opcode.h" if V.minor < 13 else "pycore_opcode_metadata.h"
    text = open(os.path.join(inc, hdr)).read()
    m = re.search(r"const uint8_t _PyOpcode_Deopt\[256\] = \{(.*?)\};", text, re.S)
    if not m:
        sys.exit("could not find _PyOpcode_Deopt in " + hdr)
    deopt = {}
    for a, b in re.findall(r"\[(\w+)\]\s*=\s*(\w+)\s*,", m.group(1)):
        if a.isdigit():
            # 3.14+: numbers without an opcode name map to themselves ("[121] = 121").
            if a != b:
                sys.exit("unnamed opcode %s deopts to %s" % (a, b))
            continue
        deopt[opmap[a]] = opmap[b]
    return deopt


UNRECOVERABLE_NAMES = {"INSTRUMENTED_LINE", "INSTRUMENTED_INSTRUCTION", "ENTER_EXECUTOR"}

header_deopt = parse_deopt_header()
spec_base = {}
for base_name, specs in opcode._specializations.items():
    for s in specs:
        spec_base[opmap[s]] = opmap[base_name]

KIND_UNDEFINED, KIND_BASE, KIND_SPECIALIZED, KIND_INSTRUMENTED, KIND_UNRECOVERABLE = range(5)
KIND_NAMES = ["Undefined", "Base", "Specialized", "Instrumented", "Unrecoverable"]

base = list(range(256))
kind = [KIND_UNDEFINED] * 256
for op in range(256):
    n = names[op]
    if not n:
        continue
    if n in UNRECOVERABLE_NAMES:
        kind[op] = KIND_UNRECOVERABLE
        continue
    if n.startswith("INSTRUMENTED_"):
        b = n[len("INSTRUMENTED_"):]
        if b not in opmap:
            sys.exit("instrumented opcode without base: " + n)
        base[op] = opmap[b]
        kind[op] = KIND_INSTRUMENTED
        continue
    hb = header_deopt.get(op)
    if hb is None:
        sys.exit("opcode %s missing from _PyOpcode_Deopt" % n)
    sb = spec_base.get(op, op)
    if hb != sb:
        sys.exit("deopt mismatch for %s: header %s, _specializations %s" % (n, names[hb], names[sb]))
    base[op] = hb
    kind[op] = KIND_BASE if hb == op else KIND_SPECIALIZED

# --- per base opcode properties --------------------------------------------
ice = opcode._inline_cache_entries


def caches_of(b):
    if hasattr(ice, "get"):  # a dict (3.13), a frozendict (3.15)
        return ice.get(names[b], 0)
    return ice[b]


def has_arg_of(b):
    if hasattr(opcode, "hasarg"):
        return b in opcode.hasarg
    return b >= opcode.HAVE_ARGUMENT


TERMINATORS = {"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
               "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"}


def jump_of(b):
    if b in opcode.hasjabs:
        sys.exit("absolute jumps are not expected on 3.11+: " + names[b])
    if b in opcode.hasjrel:
        return "Backward" if "JUMP_BACKWARD" in names[b] else "Forward"
    return "None"


def exec_extra_of(b):
    # The interpreter jumps past the END_FOR (3.12, 3.14+) / END_FOR + POP_TOP (3.13)
    # that `dis` reports as FOR_ITER's target when the iterator is exhausted (3.14+ then
    # runs POP_ITER, as sys.monitoring shows).
    if names[b] == "FOR_ITER":
        return {11: 0, 12: 1, 13: 2, 14: 1, 15: 1}[V.minor]
    return 0


# --- stack effects -----------------------------------------------------------
LARGE_SAMPLES = sorted(set(list(range(256, 5000, 3)) + [0xFFFF, 0x10000, 0x10001, 0xFFFFFF,
                                                       0x123456, 0x1000003, 0x7FFFFF]))


def raw_effect(op, arg, jump):
    try:
        return dis.stack_effect(op, arg, jump=jump)
    except (ValueError, OverflowError):
        return None


def effect_form(b, jump):
    if names[b] == "RETURN_GENERATOR" and V.minor < 13:
        return ("Linear", 1, 0)
    # 3.11's compiler books the arguments' pop on PRECALL, but the interpreter leaves
    # callable, self/NULL and arguments on the stack until CALL (or until a specialized
    # PRECALL finishes the call). A frame stopped inside CALL must see them: PRECALL 0,
    # CALL -(oparg + 1), same total.
    if V.minor == 11 and names[b] == "PRECALL":
        return ("Linear", 0, 0)
    if V.minor == 11 and names[b] == "CALL":
        return ("Linear", -1, -1)
    if not has_arg_of(b):
        e = raw_effect(b, None, jump)
        return ("Invalid",) if e is None else ("Linear", e, 0)
    small = [raw_effect(b, a, jump) for a in range(256)]
    if all(e is None for e in small):
        return ("Invalid",)
    if any(e is None for e in small):
        sys.exit("partially defined stack effect for %s" % names[b])
    large = {a: raw_effect(b, a, jump) for a in LARGE_SAMPLES}
    a0, slope = small[0], small[1] - small[0]
    if all(small[a] == a0 + slope * a for a in range(256)) and \
            all(e == a0 + slope * a for a, e in large.items()):
        return ("Linear", a0, slope)
    if all(e == small[a & 0xFF] for a, e in large.items()):
        return ("LowByte", small)
    if all(e == small[a & 0xFF] + (a >> 8) for a, e in large.items()):
        return ("LowBytePlusHigh", small)
    vals = set(large.values())
    if len(vals) == 1 and None not in vals:
        return ("TableElse", small, vals.pop())
    sys.exit("no stack-effect rule fits %s (jump=%s)" % (names[b], jump))


# --- emit ----------------------------------------------------------------
tables = {}  # tuple(values) -> static name


def table_ref(vals, hint):
    key = tuple(vals)
    if key not in tables:
        tables[key] = "SE_%d_%s" % (len(tables), hint)
    return "&" + tables[key]


def form_rust(f, hint):
    if f[0] == "Invalid":
        return "StackEffect::Invalid"
    if f[0] == "Linear":
        return "StackEffect::Linear { base: %d, per_oparg: %d }" % (f[1], f[2])
    if f[0] == "LowByte":
        return "StackEffect::LowByte(%s)" % table_ref(f[1], hint)
    if f[0] == "LowBytePlusHigh":
        return "StackEffect::LowBytePlusHigh(%s)" % table_ref(f[1], hint)
    if f[0] == "TableElse":
        return "StackEffect::TableElse(%s, %d)" % (table_ref(f[1], hint), f[2])
    raise AssertionError(f)


base_forms = {}
entries = []
for op in range(256):
    n = names[op]
    if kind[op] in (KIND_UNDEFINED, KIND_UNRECOVERABLE):
        b = op
        caches, jump, extra, term = 0, "None", 0, False
        eff = effj = ("Invalid",)
        has_arg = kind[op] == KIND_UNRECOVERABLE and has_arg_of(op)
    else:
        b = base[op]
        caches = caches_of(b)
        has_arg = has_arg_of(b)
        jump = jump_of(b)
        extra = exec_extra_of(b)
        term = names[b] in TERMINATORS
        if b not in base_forms:
            base_forms[b] = (effect_form(b, False), effect_form(b, True))
        eff, effj = base_forms[b]
    entries.append(
        "    OpcodeInfo {\n"
        "        name: \"%s\",\n"
        "        base: %d,\n"
        "        kind: OpKind::%s,\n"
        "        caches: %d,\n"
        "        has_arg: %s,\n"
        "        jump: JumpKind::%s,\n"
        "        jump_exec_extra: %d,\n"
        "        terminates: %s,\n"
        "        effect: %s,\n"
        "        effect_jump: %s,\n"
        "    },\n" % (n, b, KIND_NAMES[kind[op]], caches, str(has_arg).lower(), jump, extra,
                      str(term).lower(), form_rust(eff, names[b] if n else "X"),
                      form_rust(effj, (names[b] if n else "X") + "_JUMP"))
    )

FIXTURE_DOC = """
Fixture export (test data for src/bytecode.rs), not needed for generation:

    python3.X scripts/gen_opcode_tables.py --export-fixtures OUT_PREFIX [MAX_FILES]

writes OUT_PREFIX.compiled.txt (code objects compiled from stdlib sources,
reached through co_consts) and OUT_PREFIX.live.txt (code objects of modules
imported and exercised by a workload, so `_co_code_adaptive` is specialized;
on 3.12+ sys.monitoring events are active while it is captured, so it also
contains INSTRUMENTED_* opcodes). One record per code object, offsets in
code units:
    C <qualname>          F <co_firstlineno> <co_stacksize>
    B <co_code hex>       A <_co_code_adaptive hex or ->
    E <co_exceptiontable hex>   L <co_linetable hex>
    I off:opcode:arg ...  (dis instructions, EXTENDED_ARG excluded, arg -1 if none)
    J off:target ...      (dis jump targets)
    X start:end:target:depth:lasti ...  (dis._parse_exception_table)
    N off:line ...        (line of each instruction from co_lines(), -1 for None)
"""


def export_record(out, code, with_adaptive):
    units = lambda b: b // 2
    instrs = [i for i in dis.get_instructions(code) if i.opname != "EXTENDED_ARG"]
    line_of = {}
    for s_, e_, ln in code.co_lines():
        for b in range(s_, e_, 2):
            line_of.setdefault(b, -1 if ln is None else ln)
    out.append("C %s\n" % getattr(code, "co_qualname", code.co_name).replace("\n", " "))
    out.append("F %d %d\n" % (code.co_firstlineno, code.co_stacksize))
    out.append("B %s\n" % code.co_code.hex())
    out.append("A %s\n" % (code._co_code_adaptive.hex() if with_adaptive else "-"))
    out.append("E %s\n" % code.co_exceptiontable.hex())
    out.append("L %s\n" % code.co_linetable.hex())
    out.append("I %s\n" % " ".join("%d:%d:%d" % (units(i.offset), i.opcode, -1 if i.arg is None else i.arg)
                                   for i in instrs))
    out.append("J %s\n" % " ".join("%d:%d" % (units(i.offset), units(i.argval))
                                   for i in instrs if i.opcode in opcode.hasjrel))
    out.append("X %s\n" % " ".join("%d:%d:%d:%d:%d" % (units(e.start), units(e.end), units(e.target), e.depth,
                                                       int(e.lasti))
                                   for e in dis._parse_exception_table(code)))
    out.append("N %s\n" % " ".join("%d:%d" % (units(i.offset), line_of.get(i.offset, -1)) for i in instrs))


def walk_code(code, seen):
    if id(code) in seen:
        return
    seen[id(code)] = code
    for c in code.co_consts:
        if isinstance(c, type(code)):
            walk_code(c, seen)


def workload():
    import ast, difflib, json, pprint, re, textwrap, fractions, statistics, string, dataclasses, enum
    import argparse, configparser, email.parser, tomllib, inspect, collections, functools, shlex
    import random, decimal, ipaddress, urllib.parse, csv, io, gettext, calendar, tokenize, heapq, bisect
    src = open(ast.__file__).read()
    for _ in range(3):
        tree = ast.parse(src)
        ast.unparse(tree)
        list(tokenize.generate_tokens(io.StringIO(src).readline))
    for k in range(60):
        re.compile(r"(?P<a>x{%d,}|[a-z]+\d*)(?:foo|bar)+\s*$" % k)
        json.dumps({"a": [1, 2.5, "x" * k, None, {"b": (1, 2)}]}, indent=2, sort_keys=True)
        textwrap.fill("lorem ipsum dolor sit amet " * 10, width=20 + k)
        fractions.Fraction(k, 7) + fractions.Fraction(3, k + 1)
        pprint.pformat({i: list(range(i)) for i in range(k % 12)})
        shlex.split("a 'b c' d\\ e %d" % k)
        urllib.parse.urlsplit("http://user@host:%d/p/a?q=1#f" % (k + 1))
        ipaddress.ip_network("10.0.%d.0/24" % k)
        calendar.month(2024, k % 12 + 1)
        inspect.signature(json.dumps)
    list(difflib.unified_diff(src.splitlines()[:400], src.splitlines()[5:405]))
    statistics.stdev([random.random() for _ in range(2000)])
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=int, default=3)
    for _ in range(100):
        p.parse_args(["--x", "5"])
    cp = configparser.ConfigParser()
    for _ in range(100):
        cp.read_string("[s]\na = 1\nb = %(a)s\n")
        cp.get("s", "b")
    email.parser.Parser().parsestr("From: a@b\nSubject: hi\n\nbody\n" * 3)
    tomllib.loads('a = 1\n[t]\nb = "x"\nc = [1, 2, 3]\n' * 1)
    for _ in range(50):
        collections.Counter("abracadabra" * 20).most_common(3)
        sorted(heapq.nsmallest(5, range(1000), key=lambda v: -v))


def export_fixtures(prefix, max_files):
    import sysconfig as sc
    stdlib = sc.get_paths()["stdlib"]
    files = []
    for root, dirs, fnames in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        for f in sorted(fnames):
            if f.endswith(".py"):
                files.append(os.path.join(root, f))
    # spread the sample over the whole tree
    step = max(1, len(files) // max_files)
    files = files[::step][:max_files]
    seen = {}
    for f in files:
        try:
            src = open(f, "rb").read()
            walk_code(compile(src, f, "exec"), seen)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue
    out = ["V %d %d\n" % (V.major, V.minor)]
    for c in seen.values():
        export_record(out, c, False)
    with open(prefix + ".compiled.txt", "w") as fh:
        fh.write("".join(out))
    print("compiled: %d files, %d code objects" % (len(files), len(seen)))

    workload()
    mon = getattr(sys, "monitoring", None)
    if mon is not None:
        E = mon.events
        mon.use_tool_id(3, "fixtures")
        for ev in ("CALL", "BRANCH", "JUMP", "PY_RETURN", "PY_START", "PY_YIELD", "PY_RESUME"):
            mon.register_callback(3, getattr(E, ev), lambda *a: None)
        mon.set_events(3, E.CALL | E.BRANCH | E.JUMP | E.PY_RETURN | E.PY_START | E.PY_YIELD | E.PY_RESUME)
        workload()
    live = {}
    import types
    for m in list(sys.modules.values()):
        for v in list(getattr(m, "__dict__", {}).values()):
            objs = [v]
            if isinstance(v, type):
                objs = list(vars(v).values())
            for o in objs:
                o = getattr(o, "__func__", o)
                if isinstance(o, property):
                    o = o.fget
                co = getattr(o, "__code__", None)
                if isinstance(co, types.CodeType):
                    walk_code(co, live)
    out = ["V %d %d\n" % (V.major, V.minor)]
    for c in live.values():
        export_record(out, c, True)
    if mon is not None:
        mon.set_events(3, 0)
        mon.free_tool_id(3)
    with open(prefix + ".live.txt", "w") as fh:
        fh.write("".join(out))
    print("live: %d code objects" % len(live))


if EXPORT:
    export_fixtures(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 400)
    sys.exit(0)

magic = importlib.util.MAGIC_NUMBER
lines = []
lines.append("// @generated by scripts/gen_opcode_tables.py -- do not edit by hand.\n")
lines.append("// Interpreter: %s\n" % sys.version.replace("\n", " "))
lines.append("#![allow(clippy::all)]\n\n")
lines.append("use super::{JumpKind, OpKind, OpcodeInfo, OpcodeTable, StackEffect};\n\n")
for vals, name in tables.items():
    lines.append("static %s: [i16; 256] = %r;\n" % (name, list(vals)))
lines.append("\npub static TABLE: OpcodeTable = OpcodeTable {\n")
lines.append("    version: (%d, %d, %d),\n" % (V.major, V.minor, V.micro))
lines.append("    version_string: %s,\n" % ('"' + sys.version.split()[0] + '"'))
lines.append("    magic_number: %d,\n" % int.from_bytes(magic[:2], "little"))
lines.append("    magic: %r,\n" % list(magic))
lines.append("    extended_arg: %d,\n" % opmap["EXTENDED_ARG"])
lines.append("    cache: %d,\n" % opmap["CACHE"])
lines.append("    opcodes: [\n")
lines.extend("    " + e.replace("\n    ", "\n        ").rstrip(" ") for e in entries)
lines.append("    ],\n};\n")

os.makedirs(OUT_DIR, exist_ok=True)
with open(OUT, "w") as f:
    f.write("".join(lines))
print("wrote", OUT, "(%d shared effect tables)" % len(tables))
