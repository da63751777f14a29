//! The planner on real bytecode: `co_code` and `co_exceptiontable` of tiny functions as
//! CPython 3.11.7, 3.12.1 and 3.13.0 compile them (source in the comments; offsets below
//! are code units, as `dis` offsets / 2).

use super::*;
use crate::opcodes;
use crate::snapshot::{Object, PyStr};

// def g(*a): return 1
// def add(x):
//     return x + g(x)
// def loop(it):
//     for v in it:
//         g(v)
//     return 0
// def handler():
//     try:
//         raise ValueError
//     except ValueError:
//         g()
//     return 0
// class K:
//     def __init__(self):
//         self.a = 1
// def make():
//     return [K()]
const ADD_311: &[u8] =
    &[151, 0, 124, 0, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 124, 0, 166, 1, 0, 0, 171, 1, 0, 0, 0, 0, 0, 0, 0, 0, 122, 0, 0, 0, 83, 0];
const ADD_311_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:LOAD_GLOBAL 8:LOAD_FAST 9:PRECALL 11:CALL 16:BINARY_OP 18:RETURN_VALUE
const LOOP_311: &[u8] = &[
    151, 0, 124, 0, 68, 0, 93, 17, 125, 1, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 124, 1, 166, 1, 0, 0, 171, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 140, 18,
    100, 1, 83, 0,
];
const LOOP_311_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:GET_ITER 3:FOR_ITER 4:STORE_FAST 5:LOAD_GLOBAL 11:LOAD_FAST 12:PRECALL 14:CALL 19:POP_TOP 20:JUMP_BACKWARD 21:LOAD_CONST 22:RETURN_VALUE
const HANDLER_311: &[u8] = &[
    151, 0, 9, 0, 116, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 130, 1, 35, 0, 116, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 36, 0, 114, 17, 1, 0, 116, 3, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 166, 0, 0, 0, 171, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 89, 0, 110, 4, 119, 0, 120, 3, 89, 0, 119, 1, 100, 1, 83, 0,
];
const HANDLER_311_EXC: &[u8] = &[130, 7, 9, 0, 137, 24, 36, 3, 163, 1, 36, 3];
// dis: 0:RESUME 1:NOP 2:LOAD_GLOBAL 8:RAISE_VARARGS 9:PUSH_EXC_INFO 10:LOAD_GLOBAL 16:CHECK_EXC_MATCH 17:POP_JUMP_FORWARD_IF_FALSE 18:POP_TOP 19:LOAD_GLOBAL 25:PRECALL 27:CALL 32:POP_TOP 33:POP_EXCEPT 34:JUMP_FORWARD 35:RERAISE 36:COPY 37:POP_EXCEPT 38:RERAISE 39:LOAD_CONST 40:RETURN_VALUE
const MAKE_311: &[u8] = &[151, 0, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 166, 0, 0, 0, 171, 0, 0, 0, 0, 0, 0, 0, 0, 0, 103, 1, 83, 0];
const MAKE_311_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_GLOBAL 7:PRECALL 9:CALL 14:BUILD_LIST 15:RETURN_VALUE
const ADD_312: &[u8] = &[151, 0, 124, 0, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 124, 0, 171, 1, 0, 0, 0, 0, 0, 0, 122, 0, 0, 0, 83, 0];
const ADD_312_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:LOAD_GLOBAL 7:LOAD_FAST 8:CALL 12:BINARY_OP 14:RETURN_VALUE
const LOOP_312: &[u8] =
    &[151, 0, 124, 0, 68, 0, 93, 13, 0, 0, 125, 1, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 124, 1, 171, 1, 0, 0, 0, 0, 0, 0, 1, 0, 140, 15, 4, 0, 121, 1];
const LOOP_312_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:GET_ITER 3:FOR_ITER 5:STORE_FAST 6:LOAD_GLOBAL 11:LOAD_FAST 12:CALL 16:POP_TOP 17:JUMP_BACKWARD 18:END_FOR 19:RETURN_CONST
const HANDLER_312: &[u8] = &[
    151, 0, 9, 0, 116, 0, 0, 0, 0, 0, 0, 0, 0, 0, 130, 1, 35, 0, 116, 0, 0, 0, 0, 0, 0, 0, 0, 0, 36, 0, 114, 13, 1, 0, 116, 3, 0, 0, 0, 0, 0, 0, 0,
    0, 171, 0, 0, 0, 0, 0, 0, 0, 1, 0, 89, 0, 121, 1, 119, 0, 120, 3, 89, 0, 119, 1,
];
const HANDLER_312_EXC: &[u8] = &[130, 6, 8, 0, 136, 19, 30, 3, 157, 1, 30, 3];
// dis: 0:RESUME 1:NOP 2:LOAD_GLOBAL 7:RAISE_VARARGS 8:PUSH_EXC_INFO 9:LOAD_GLOBAL 14:CHECK_EXC_MATCH 15:POP_JUMP_IF_FALSE 16:POP_TOP 17:LOAD_GLOBAL 22:CALL 26:POP_TOP 27:POP_EXCEPT 28:RETURN_CONST 29:RERAISE 30:COPY 31:POP_EXCEPT 32:RERAISE
const MAKE_312: &[u8] = &[151, 0, 116, 1, 0, 0, 0, 0, 0, 0, 0, 0, 171, 0, 0, 0, 0, 0, 0, 0, 103, 1, 83, 0];
const MAKE_312_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_GLOBAL 6:CALL 10:BUILD_LIST 11:RETURN_VALUE
const ADD_313: &[u8] = &[149, 0, 85, 0, 91, 1, 0, 0, 0, 0, 0, 0, 0, 0, 85, 0, 53, 1, 0, 0, 0, 0, 0, 0, 45, 0, 0, 0, 36, 0];
const ADD_313_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:LOAD_GLOBAL 7:LOAD_FAST 8:CALL 12:BINARY_OP 14:RETURN_VALUE
const LOOP_313: &[u8] = &[
    149, 0, 85, 0, 19, 0, 72, 14, 0, 0, 110, 1, 91, 1, 0, 0, 0, 0, 0, 0, 0, 0, 85, 1, 53, 1, 0, 0, 0, 0, 0, 0, 32, 0, 77, 16, 0, 0, 11, 0, 32, 0,
    103, 1,
];
const LOOP_313_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_FAST 2:GET_ITER 3:FOR_ITER 5:STORE_FAST 6:LOAD_GLOBAL 11:LOAD_FAST 12:CALL 16:POP_TOP 17:JUMP_BACKWARD 19:END_FOR 20:POP_TOP 21:RETURN_CONST
const HANDLER_313: &[u8] = &[
    149, 0, 30, 0, 91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 101, 1, 33, 0, 91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 97, 13, 0, 0, 32, 0, 91, 3, 0, 0, 0, 0, 0, 0,
    0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 32, 0, 31, 0, 103, 1, 102, 0, 61, 3, 31, 0, 102, 1,
];
const HANDLER_313_EXC: &[u8] = &[130, 6, 8, 0, 136, 20, 31, 3, 158, 1, 31, 3];
// dis: 0:RESUME 1:NOP 2:LOAD_GLOBAL 7:RAISE_VARARGS 8:PUSH_EXC_INFO 9:LOAD_GLOBAL 14:CHECK_EXC_MATCH 15:POP_JUMP_IF_FALSE 17:POP_TOP 18:LOAD_GLOBAL 23:CALL 27:POP_TOP 28:POP_EXCEPT 29:RETURN_CONST 30:RERAISE 31:COPY 32:POP_EXCEPT 33:RERAISE
const MAKE_313: &[u8] = &[149, 0, 91, 1, 0, 0, 0, 0, 0, 0, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 47, 1, 36, 0];
const MAKE_313_EXC: &[u8] = &[];
// dis: 0:RESUME 1:LOAD_GLOBAL 6:CALL 10:BUILD_LIST 11:RETURN_VALUE

/// Offsets (code units) in the functions above, per version.
struct Case {
    minor: u8,
    add: (&'static [u8], &'static [u8]),
    looping: (&'static [u8], &'static [u8]),
    handler: (&'static [u8], &'static [u8]),
    make: (&'static [u8], &'static [u8]),
    /// `add`: the CALL of `g(x)` (and its PRECALL on 3.11), the instruction after it.
    add_call: u32,
    add_precall: Option<u32>,
    add_after: u32,
    /// `loop`: FOR_ITER and what follows it, the CALL of `g(v)` and what follows it, the
    /// JUMP_BACKWARD closing the loop.
    for_iter: u32,
    after_for_iter: u32,
    loop_call: u32,
    loop_after_call: u32,
    jump_backward: u32,
    /// `handler`: the CALL of `g()` inside `except`, the instruction after it.
    handler_call: u32,
    handler_after: u32,
    /// `make`: the CALL of `K()`, the instruction after it.
    make_call: u32,
    make_after: u32,
}

const CASES: [Case; 3] = [
    Case {
        minor: 11,
        add: (ADD_311, ADD_311_EXC),
        looping: (LOOP_311, LOOP_311_EXC),
        handler: (HANDLER_311, HANDLER_311_EXC),
        make: (MAKE_311, MAKE_311_EXC),
        add_call: 11,
        add_precall: Some(9),
        add_after: 16,
        for_iter: 3,
        after_for_iter: 4,
        loop_call: 14,
        loop_after_call: 19,
        jump_backward: 20,
        handler_call: 27,
        handler_after: 32,
        make_call: 9,
        make_after: 14,
    },
    Case {
        minor: 12,
        add: (ADD_312, ADD_312_EXC),
        looping: (LOOP_312, LOOP_312_EXC),
        handler: (HANDLER_312, HANDLER_312_EXC),
        make: (MAKE_312, MAKE_312_EXC),
        add_call: 8,
        add_precall: None,
        add_after: 12,
        for_iter: 3,
        after_for_iter: 5,
        loop_call: 12,
        loop_after_call: 16,
        jump_backward: 17,
        handler_call: 22,
        handler_after: 26,
        make_call: 6,
        make_after: 10,
    },
    Case {
        minor: 13,
        add: (ADD_313, ADD_313_EXC),
        looping: (LOOP_313, LOOP_313_EXC),
        handler: (HANDLER_313, HANDLER_313_EXC),
        make: (MAKE_313, MAKE_313_EXC),
        add_call: 8,
        add_precall: None,
        add_after: 12,
        for_iter: 3,
        after_for_iter: 5,
        loop_call: 12,
        loop_after_call: 16,
        jump_backward: 17,
        handler_call: 23,
        handler_after: 27,
        make_call: 6,
        make_after: 10,
    },
];

fn table(c: &Case) -> &'static OpcodeTable {
    opcodes::table_for(3, c.minor).expect("opcode table")
}

/// A graph built by hand, node by node.
#[derive(Default)]
struct Graph {
    graph: ObjectGraph,
}

impl Graph {
    fn add(&mut self, value: Value, type_id: Option<ObjId>) -> ObjId {
        let id = self.graph.objects.len() as ObjId;
        self.graph.objects.push(Object { addr: 0x1000 + 0x10 * id as u64, type_id, value });
        id
    }
    fn str(&mut self, s: &str) -> ObjId {
        self.add(Value::Str(PyStr::Text(s.into())), None)
    }
    fn code(&mut self, name: &str, (code, exc): (&[u8], &[u8])) -> ObjId {
        let info = CodeInfo {
            name: name.into(),
            qualname: name.into(),
            filename: "t.py".into(),
            first_line: 1,
            flags: 0,
            argcount: 1,
            posonlyargcount: 0,
            kwonlyargcount: 0,
            stacksize: 8,
            nlocals: 2,
            localsplus_names: vec!["a".into(), "b".into()],
            localsplus_kinds: vec![0x20, 0x20],
            code: code.to_vec(),
            linetable: vec![],
            exceptiontable: exc.to_vec(),
            consts: vec![],
            names: vec![],
        };
        self.add(Value::Code(Box::new(info)), None)
    }
    fn function(&mut self, code: ObjId) -> ObjId {
        let (name, qualname) = (self.str("f"), self.str("f"));
        let value = Value::Function {
            code,
            name,
            qualname,
            module_name: Some("__main__".into()),
            globals_module: None,
            globals: None,
            defaults: None,
            kwdefaults: None,
            closure: None,
            dict: None,
            annotations: None,
        };
        self.add(value, None)
    }
    fn builtin(&mut self, name: &str) -> ObjId {
        self.add(Value::BuiltinFunction { name: name.into(), self_: None, module: Some("builtins".into()) }, None)
    }
}

fn frame(code: ObjId, lasti: u32, stack: Vec<Option<ObjId>>) -> FrameInfo {
    FrameInfo {
        addr: 0x9000,
        code,
        owner: 0,
        lasti: lasti as i64,
        instr_start: lasti,
        line: Some(2),
        localsplus: vec![None, None],
        stack,
        stack_from: StackSource::Stacktop,
        globals: None,
        locals_mapping: None,
        function: None,
        generator: None,
        through_init_cleanup: false,
    }
}

#[test]
fn a_call_resumes_after_it_keeping_what_lies_below_the_result() {
    for c in &CASES {
        let mut g = Graph::default();
        let add = g.code("add", c.add);
        let (x, callee) = (g.str("x"), g.builtin("g"));
        // x, then the call's inputs (NULL and the callable, in either order).
        let f = frame(add, c.add_call, vec![Some(x), None, Some(callee), Some(x)]);
        let plan = plan_resume(&g.graph, &[f], table(c), None, Stop::InCall).unwrap();
        assert_eq!(plan.len(), 1);
        let p = &plan[0];
        assert_eq!((p.resume, p.keep, p.for_iter, p.push, p.exc_value, p.init_self), (c.add_after, 1, None, true, None, None), "3.{}", c.minor);
        // 3.11: a frame whose last instruction is the (specialized) PRECALL made the call
        // itself; it resumes after the CALL that follows.
        if let Some(precall) = c.add_precall {
            let f = frame(add, precall, vec![Some(x), None, Some(callee), Some(x)]);
            let plan = plan_resume(&g.graph, &[f], table(c), None, Stop::InCall).unwrap();
            assert_eq!((plan[0].resume, plan[0].keep), (c.add_after, 1));
        }
    }
}

#[test]
fn a_frame_waiting_in_for_iter_keeps_its_iterator() {
    for c in &CASES {
        let mut g = Graph::default();
        let (add, looping) = (g.code("add", c.add), g.code("loop", c.looping));
        let (x, callee) = (g.str("x"), g.builtin("g"));
        let gen = g.add(Value::None, None);
        // The inner frame is a generator advanced by the loop's FOR_ITER: C code in
        // between (the stack pointer not saved), yet transparent.
        let mut inner = frame(add, c.add_call, vec![Some(x), None, Some(callee)]);
        inner.generator = Some(gen);
        let mut outer = frame(looping, c.for_iter, vec![Some(gen)]);
        outer.stack_from = StackSource::Static;
        let plan = plan_resume(&g.graph, &[inner.clone(), outer.clone()], table(c), None, Stop::InCall).unwrap();
        let p = &plan[1];
        assert_eq!((p.resume, p.keep, p.for_iter, p.push), (c.after_for_iter, 1, Some(c.for_iter), true), "3.{}", c.minor);
        assert_eq!(plan[0].for_iter, None);

        // The loop iterates a C wrapper (`map(f, gen)`) that pulls from the generator:
        // resuming would skip the wrapper, so the frame is not resumable here.
        let wrapper = g.add(Value::Opaque, None);
        outer.stack = vec![Some(wrapper)];
        let err = plan_resume(&g.graph, &[inner, outer], table(c), None, Stop::InCall).unwrap_err();
        assert!(err.is_called_from_c(), "3.{}: {err}", c.minor);
    }
}

#[test]
fn a_call_inside_a_for_loop_keeps_the_iterator() {
    for c in &CASES {
        let mut g = Graph::default();
        let looping = g.code("loop", c.looping);
        let (it, callee, v) = (g.str("iterator"), g.builtin("g"), g.str("v"));
        let f = frame(looping, c.loop_call, vec![Some(it), None, Some(callee), Some(v)]);
        let plan = plan_resume(&g.graph, &[f], table(c), None, Stop::InCall).unwrap();
        assert_eq!((plan[0].resume, plan[0].keep, plan[0].for_iter), (c.loop_after_call, 1, None), "3.{}", c.minor);
    }
}

#[test]
fn between_instructions_a_frame_resumes_with_its_stack_as_is() {
    for c in &CASES {
        let mut g = Graph::default();
        let looping = g.code("loop", c.looping);
        let it = g.str("iterator");
        let t = table(c);
        let code = match &g.graph.get(looping).value {
            Value::Code(code) => code.as_ref().clone(),
            _ => unreachable!(),
        };
        // RESUME and backward jumps check for pending work before doing anything: they
        // run again. After a call the check follows the call: go on with the next one,
        // the call's result on the stack.
        assert_eq!(between_resume(&code, 0, t).unwrap(), (0, 0), "3.{}", c.minor);
        assert_eq!(between_resume(&code, c.jump_backward as i64, t).unwrap(), (c.jump_backward, 1), "3.{}", c.minor);
        assert_eq!(between_resume(&code, c.loop_call as i64, t).unwrap(), (c.loop_after_call, 2), "3.{}", c.minor);
        let exc = g.str("handled");
        let plan = plan_resume(&g.graph, &[frame(looping, c.jump_backward, vec![Some(it)])], t, Some(exc), Stop::BetweenInstructions).unwrap();
        let p = &plan[0];
        assert_eq!((p.resume, p.keep, p.for_iter, p.push, p.exc_value), (c.jump_backward, 1, None, false, Some(exc)));
        // A stack shallower than the bytecode says it is there is refused.
        let err = plan_resume(&g.graph, &[frame(looping, c.jump_backward, vec![])], t, None, Stop::BetweenInstructions).unwrap_err();
        assert!(matches!(err, ResumeError::ShallowStack { have: 0, need: 1, .. }), "{err}");
        assert!(between_resume(&code, 10_000, t).is_err());
    }
}

#[test]
fn the_exception_saved_by_a_handler_is_what_its_caller_sees() {
    for c in &CASES {
        let mut g = Graph::default();
        let (add, handler) = (g.code("add", c.add), g.code("handler", c.handler));
        let (x, callee) = (g.str("x"), g.builtin("g"));
        let (saved, handled) = (g.str("saved exception"), g.str("handled exception"));
        let inner = frame(add, c.add_call, vec![Some(x), None, Some(callee)]);
        // In the except block: PUSH_EXC_INFO left the previous exception under the one
        // being handled (popped once matched: `except ValueError:` names nothing).
        let middle = frame(handler, c.handler_call, vec![Some(saved), None, Some(callee)]);
        let outer = frame(add, c.add_call, vec![Some(x), None, Some(callee)]);
        let plan = plan_resume(&g.graph, &[inner, middle, outer], table(c), Some(handled), Stop::InCall).unwrap();
        assert_eq!((plan[1].resume, plan[1].keep), (c.handler_after, 1), "3.{}", c.minor);
        let seen: Vec<_> = plan.iter().map(|p| p.exc_value).collect();
        assert_eq!(seen, [Some(handled), Some(handled), Some(saved)], "3.{}", c.minor);
    }
}

#[test]
fn an_init_called_through_a_class_call_gives_its_caller_the_instance() {
    for c in &CASES {
        let mut g = Graph::default();
        let (init, make) = (g.code("__init__", c.add), g.code("make", c.make));
        let class = g.add(Value::None, None);
        let instance = g.add(Value::None, Some(class));
        let mut inner = frame(init, c.add_call, vec![None, None, None]);
        inner.localsplus = vec![Some(instance), None];
        // `type.__call__` (C) runs `__init__`: no saved stack pointer, the class is among
        // the call's inputs.
        let mut outer = frame(make, c.make_call, vec![None, Some(class)]);
        outer.stack_from = StackSource::Static;
        let plan = plan_resume(&g.graph, &[inner, outer], table(c), None, Stop::InCall).unwrap();
        let p = &plan[1];
        assert_eq!((p.resume, p.keep, p.init_self), (c.make_after, 0, Some(instance)), "3.{}", c.minor);
    }
}

#[test]
fn a_frame_called_back_from_c_is_refused_unless_the_call_is_transparent() {
    for c in &CASES {
        let mut g = Graph::default();
        let add = g.code("add", c.add);
        let (x, sorted) = (g.str("x"), g.builtin("sorted"));
        let inner = frame(add, c.add_call, vec![Some(x), None, Some(sorted)]);
        let mut outer = frame(add, c.add_call, vec![Some(x), None, Some(sorted), Some(x)]);
        outer.stack_from = StackSource::Static;
        let err = plan_resume(&g.graph, &[inner.clone(), outer.clone()], table(c), None, Stop::InCall).unwrap_err();
        assert!(err.is_called_from_c(), "{err}");
        assert!(err.to_string().contains("add (t.py:2) is called from C code"), "{err}");
        // The same call of a Python function running the inner frame's code (`f(*args)`
        // through C) is fine.
        let function = g.function(add);
        outer.stack = vec![Some(x), None, Some(function), Some(x)];
        let plan = plan_resume(&g.graph, &[inner, outer], table(c), None, Stop::InCall).unwrap();
        assert_eq!((plan[1].resume, plan[1].keep), (c.add_after, 1));
    }
}

#[test]
fn a_frame_without_code_is_an_inconsistent_read() {
    let c = &CASES[0];
    let mut g = Graph::default();
    let not_code = g.str("x");
    let err = plan_resume(&g.graph, &[frame(not_code, 0, vec![])], table(c), None, Stop::InCall).unwrap_err();
    assert!(matches!(err, ResumeError::FrameWithoutCode { addr: 0x9000 }));
}
