//! Functions, generators and coroutines.

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::Value;

use super::view::span;
use super::Decoder;

impl<'a> Decoder<'a> {
    pub(super) fn decode_function(&mut self, addr: u64) -> Result<Value> {
        let l = self.layout();
        let v = self.view(
            addr,
            &[
                l.function_code,
                l.function_globals,
                l.function_name,
                l.function_qualname,
                l.function_defaults,
                l.function_kwdefaults,
                l.function_closure,
                l.function_dict,
                l.function_module,
            ],
        )?;
        let (Some(code), Some(name), Some(qualname)) =
            (self.object(v.ptr(l.function_code)?), self.object(v.ptr(l.function_name)?), self.object(v.ptr(l.function_qualname)?))
        else {
            return Ok(Value::Opaque);
        };
        let module_addr = v.ptr(l.function_module)?;
        let module_name = if module_addr != 0 && self.is_exact(module_addr, BuiltinType::Str)? {
            Some(self.read_str(module_addr)?.as_text().into_owned())
        } else {
            None
        };
        let globals_addr = v.ptr(l.function_globals)?;
        let mut globals_module = self.globals_name(globals_addr)?;
        // A namespace that is no imported module's (namedtuple's `__new__`, exec'd code)
        // travels by value, like `__main__`'s.
        if self.limits.deep && globals_addr != 0 {
            let is_module_dict = match &globals_module {
                Some(m) => self.module_dict_address(m)? == Some(globals_addr),
                None => false,
            };
            if !is_module_dict {
                globals_module = None;
            }
        }
        let carry_globals = match &globals_module {
            Some(m) => self.limits.module_dicts.contains(m),
            None => self.limits.deep,
        };
        let globals = if carry_globals && globals_addr != 0 { self.object(globals_addr) } else { None };
        Ok(Value::Function {
            code,
            name,
            qualname,
            module_name,
            globals_module,
            globals,
            defaults: self.object(v.ptr(l.function_defaults)?),
            kwdefaults: self.object(v.ptr(l.function_kwdefaults)?),
            closure: self.object(v.ptr(l.function_closure)?),
            dict: if self.limits.deep { self.object(v.ptr(l.function_dict)?) } else { None },
            annotations: None,
        })
    }

    pub(super) fn decode_generator(&mut self, addr: u64, kind: BuiltinType) -> Result<Value> {
        let l = self.layout();
        let exc_value = l.gen_exc_state + l.err_stack_item_exc_value;
        let v = self.view_spans(addr, &[span(l.gen_frame_state, 1), span(l.gen_name, 8), span(l.gen_qualname, 8), span(exc_value, 8)])?;
        let state = v.i8(l.gen_frame_state)? as i32;
        let name = self.object(v.ptr(l.gen_name)?);
        let qualname = self.object(v.ptr(l.gen_qualname)?);
        let exc_state = self.object(v.ptr(exc_value)?);
        let kind = match kind {
            BuiltinType::Coroutine => "coroutine",
            BuiltinType::AsyncGenerator => "async_generator",
            _ => "generator",
        }
        .to_string();
        // Executing frames are read from the thread's stack; finished ones have none.
        let frame = if state < l.frame_executing { Some(Box::new(self.read_frame(addr + l.gen_iframe as u64, true)?)) } else { None };
        let phase = if state == l.frame_created {
            "CREATED"
        } else if state < l.frame_executing {
            "SUSPENDED"
        } else if state == l.frame_executing {
            "RUNNING"
        } else {
            "CLOSED"
        };
        let prefix = if kind == "coroutine" {
            "CORO"
        } else if kind == "async_generator" {
            "AGEN"
        } else {
            "GEN"
        };
        let python_state = format!("{prefix}_{phase}");
        match (name, qualname) {
            (Some(name), Some(qualname)) => Ok(Value::Generator { kind, name, qualname, state, python_state, frame, exc_state }),
            _ => Ok(Value::Opaque),
        }
    }
}
