//! `repr()` of decoded objects, matching CPython for the builtin types and for instances
//! whose class leaves `__repr__` to `object` (or to a builtin base we decode).

use std::collections::HashSet;

use num_bigint::{BigInt, BigUint, Sign};

use crate::layouts::tpflags::{TPFLAGS_HEAPTYPE, TPFLAGS_IMMUTABLETYPE};
use crate::snapshot::{ObjId, ObjectGraph, PyStr, TypeInfo, Value};

/// Longest repr produced; past this the text ends with "...".
const MAX_REPR: usize = 1 << 27;
const MAX_DEPTH: usize = 500;

pub fn repr(g: &ObjectGraph, id: ObjId) -> String {
    let mut r = Repr { g, active: HashSet::new(), out: String::new(), depth: 0 };
    r.write(id);
    if r.out.len() > MAX_REPR {
        let mut cut = MAX_REPR;
        while !r.out.is_char_boundary(cut) {
            cut -= 1;
        }
        r.out.truncate(cut);
        r.out.push_str("...");
    }
    r.out
}

/// `type(obj).__name__`.
pub fn type_name(g: &ObjectGraph, id: ObjId) -> String {
    g.type_info(id).map(|t| t.name.clone()).unwrap_or_else(|| "?".into())
}

pub fn int_value(negative: bool, digits: &[u32]) -> BigInt {
    let mut mag = BigUint::default();
    for d in digits.iter().rev() {
        mag = (mag << 30u32) + BigUint::from(*d);
    }
    BigInt::from_biguint(if negative { Sign::Minus } else { Sign::Plus }, mag)
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the
/// decimal exponent is below -4 or above 16.
pub fn float_repr(x: f64) -> String {
    format_float(x, true)
}

fn format_float(x: f64, add_dot_zero: bool) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let shortest = format!("{:e}", x); // shortest round-trip, e.g. "-1.25e-5"
                                       // Between two equally short candidates Python takes the nearer, ties to even; Rust's
                                       // shortest form may round a tie up. The correctly rounded form of the same length is
                                       // Python's whenever it reads back as the same float.
    let ndigits = shortest.split('e').next().unwrap_or("").bytes().filter(u8::is_ascii_digit).count();
    let rounded = format!("{:.*e}", ndigits.saturating_sub(1), x);
    let sci = if rounded.parse::<f64>() == Ok(x) { rounded } else { shortest };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1; // position of the decimal point relative to the digits
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-decpt) as usize));
        out.push_str(&digits);
    } else if digits.len() as i32 <= decpt {
        out.push_str(&digits);
        out.push_str(&"0".repeat((decpt - digits.len() as i32) as usize));
        if add_dot_zero {
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

pub fn complex_repr(re: f64, im: f64) -> String {
    let imag = format_float(im, false);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let real = format_float(re, false);
    let sign = if imag.starts_with('-') { "" } else { "+" };
    format!("({real}{sign}{imag}j)")
}

/// What `str.isprintable()` says (the table follows one CPython's Unicode database:
/// code points assigned in a later Unicode version can differ on older interpreters).
pub fn is_printable(c: u32) -> bool {
    use crate::printable::NOT_PRINTABLE;
    let i = NOT_PRINTABLE.partition_point(|&(_, end)| end < c);
    NOT_PRINTABLE.get(i).is_none_or(|&(start, _)| start > c)
}

pub fn str_repr(s: &PyStr) -> String {
    let cps = s.code_points();
    let has_single = cps.contains(&('\'' as u32));
    let has_double = cps.contains(&('"' as u32));
    let quote = if has_single && !has_double { '"' } else { '\'' };
    let mut out = String::with_capacity(cps.len() + 2);
    out.push(quote);
    for c in cps {
        match c {
            0x5c => out.push_str("\\\\"),
            0x09 => out.push_str("\\t"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            _ if c == quote as u32 => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(c as u8 as char),
            _ if c < 0x7f || c < 0x100 && !is_printable(c) => out.push_str(&format!("\\x{c:02x}")),
            _ if is_printable(c) => out.push(char::from_u32(c).unwrap_or('\u{fffd}')),
            _ if c < 0x10000 => out.push_str(&format!("\\u{c:04x}")),
            _ => out.push_str(&format!("\\U{c:08x}")),
        }
    }
    out.push(quote);
    out
}

pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { '"' } else { '\'' };
    let mut out = String::from("b");
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
    out
}

struct Repr<'g> {
    g: &'g ObjectGraph,
    active: HashSet<ObjId>,
    out: String,
    depth: usize,
}

impl<'g> Repr<'g> {
    fn type_of(&self, id: ObjId) -> Option<&'g TypeInfo> {
        self.g.type_info(id)
    }

    /// `<module.Qualname object at 0x...>`, as `object.__repr__` writes it.
    fn default_repr(&mut self, id: ObjId) {
        let addr = self.g.get(id).addr;
        let name = match self.type_of(id) {
            Some(t) if t.module != "builtins" => format!("{}.{}", t.module, t.qualname),
            Some(t) => t.qualname.clone(),
            None => "object".into(),
        };
        self.out.push_str(&format!("<{name} object at {addr:#x}>"));
    }

    /// Does the instance's class (or a class before the builtin base in its MRO) define
    /// its own `__repr__`? Then we cannot reproduce it. With `c_types`, a C type before the
    /// builtin base (a structseq such as sys.version_info, OrderedDict) counts too: it has
    /// its own tp_repr.
    fn own_repr_before_builtin(&self, id: ObjId, c_types: bool) -> bool {
        let Some(t) = self.type_of(id) else { return false };
        for &m in &t.mro {
            if let Value::Type(ti) = &self.g.get(m).value {
                if ti.builtin.is_some() {
                    return false;
                }
                let c_type = ti.flags & TPFLAGS_HEAPTYPE == 0 || ti.flags & TPFLAGS_IMMUTABLETYPE != 0;
                if (c_types && c_type) || ti.dict_names.iter().any(|n| n == "__repr__") {
                    return true;
                }
            }
        }
        false
    }

    fn seq(&mut self, open: &str, items: &[ObjId], close: &str, one_comma: bool) {
        self.out.push_str(open);
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.write(*it);
            if self.out.len() > MAX_REPR {
                break;
            }
        }
        if one_comma && items.len() == 1 {
            self.out.push(',');
        }
        self.out.push_str(close);
    }

    fn write(&mut self, id: ObjId) {
        if self.depth > MAX_DEPTH || self.out.len() > MAX_REPR {
            self.out.push_str("...");
            return;
        }
        self.depth += 1;
        self.write_inner(id);
        self.depth -= 1;
    }

    fn write_inner(&mut self, id: ObjId) {
        let g = self.g;
        let obj = g.get(id);
        let addr = obj.addr;
        // A subclass of a builtin without its own __repr__ has the builtin's repr.
        let value = match &obj.value {
            Value::Instance { base: Some(base), .. } if !self.own_repr_before_builtin(id, true) => base.as_ref(),
            v => v,
        };
        match value {
            Value::None => self.out.push_str("None"),
            Value::Ellipsis => self.out.push_str("Ellipsis"),
            Value::NotImplemented => self.out.push_str("NotImplemented"),
            Value::Bool(b) => self.out.push_str(if *b { "True" } else { "False" }),
            Value::Int { negative, digits } => self.out.push_str(&int_value(*negative, digits).to_string()),
            Value::Float(x) => self.out.push_str(&float_repr(*x)),
            Value::Complex(re, im) => self.out.push_str(&complex_repr(*re, *im)),
            Value::Str(s) => self.out.push_str(&str_repr(s)),
            Value::Bytes(b) => self.out.push_str(&bytes_repr(b)),
            Value::ByteArray(b) => {
                let name = self.type_of(id).map(|t| t.name.clone()).unwrap_or_else(|| "bytearray".into());
                self.out.push_str(&format!("{name}({})", bytes_repr(b)))
            }
            Value::Tuple(items) => {
                if !self.active.insert(id) {
                    self.out.push_str("(...)");
                    return;
                }
                self.seq("(", items, ")", true);
                self.active.remove(&id);
            }
            Value::List(items) => {
                if !self.active.insert(id) {
                    self.out.push_str("[...]");
                    return;
                }
                self.seq("[", items, "]", false);
                self.active.remove(&id);
            }
            Value::Dict(items) => {
                // A frozendict (3.15) and its subclasses: `name({...})`, `name()` when empty.
                let frozen = self.type_of(id).filter(|t| {
                    t.mro.iter().any(|&m| matches!(&self.g.get(m).value, Value::Type(ti) if ti.builtin.as_deref() == Some("FrozenDict")))
                });
                let frozen = frozen.map(|t| t.name.clone());
                if let Some(name) = &frozen {
                    self.out.push_str(name);
                    self.out.push('(');
                    if items.is_empty() {
                        self.out.push(')');
                        return;
                    }
                }
                if !self.active.insert(id) {
                    self.out.push_str("{...}");
                    if frozen.is_some() {
                        self.out.push(')');
                    }
                    return;
                }
                self.out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.write(*k);
                    self.out.push_str(": ");
                    self.write(*v);
                    if self.out.len() > MAX_REPR {
                        break;
                    }
                }
                self.out.push('}');
                if frozen.is_some() {
                    self.out.push(')');
                }
                self.active.remove(&id);
            }
            Value::Set(items) | Value::FrozenSet(items) => {
                let frozen = matches!(value, Value::FrozenSet(_));
                let name = self.type_of(id).map(|t| t.name.clone()).unwrap_or_else(|| "set".into());
                if items.is_empty() {
                    self.out.push_str(&format!("{name}()"));
                    return;
                }
                if !self.active.insert(id) {
                    self.out.push_str(&format!("{name}(...)"));
                    return;
                }
                if frozen || name != "set" {
                    self.out.push_str(&format!("{name}("));
                }
                self.seq("{", items, "}", false);
                if frozen || name != "set" {
                    self.out.push(')');
                }
                self.active.remove(&id);
            }
            Value::Cell(content) => match content {
                Some(c) => {
                    let t = self.type_of(*c).map(|t| t.name.clone()).unwrap_or_default();
                    self.out.push_str(&format!("<cell at {addr:#x}: {t} object at {:#x}>", g.get(*c).addr));
                }
                None => self.out.push_str(&format!("<cell at {addr:#x}: empty>")),
            },
            Value::Module { name, file, spec, origin, has_location, .. } => {
                let q = |t: &str| str_repr(&PyStr::Text(t.to_string()));
                // importlib's _module_repr_from_spec, or __file__ for modules without a spec.
                let text = match (spec, origin, file) {
                    (true, Some(o), _) if *has_location => format!("<module {} from {}>", q(name), q(o)),
                    (true, Some(o), _) => format!("<module {} ({o})>", q(name)),
                    (false, _, Some(f)) => format!("<module {} from {}>", q(name), q(f)),
                    _ => format!("<module {}>", q(name)),
                };
                self.out.push_str(&text);
            }
            Value::Type(t) => {
                if t.module == "builtins" {
                    self.out.push_str(&format!("<class '{}'>", t.qualname));
                } else {
                    self.out.push_str(&format!("<class '{}.{}'>", t.module, t.qualname));
                }
            }
            Value::Function { qualname, .. } => {
                let q = g.str_of(*qualname).map(|s| s.into_owned()).unwrap_or_default();
                self.out.push_str(&format!("<function {q} at {addr:#x}>"));
            }
            Value::Code(c) => {
                self.out.push_str(&format!("<code object {} at {addr:#x}, file \"{}\", line {}>", c.name, c.filename, c.first_line));
            }
            Value::Method { func, self_ } => {
                let q = match &g.get(*func).value {
                    Value::Function { qualname, .. } => g.str_of(*qualname).map(|s| s.into_owned()).unwrap_or_default(),
                    _ => "?".into(),
                };
                self.out.push_str(&format!("<bound method {q} of "));
                self.write(*self_);
                self.out.push('>');
            }
            Value::BuiltinFunction { name, self_, .. } => match self_ {
                None => self.out.push_str(&format!("<built-in function {name}>")),
                Some(s) => {
                    let t = self.type_of(*s);
                    let tp_name = t
                        .map(|t| if t.module == "builtins" { t.qualname.clone() } else { format!("{}.{}", t.module, t.qualname) })
                        .unwrap_or_default();
                    if matches!(g.get(*s).value, Value::Type(_)) {
                        // classmethod-like builtins bound to a type: `<built-in method fromkeys of type object at ...>`
                    }
                    self.out.push_str(&format!("<built-in method {name} of {tp_name} object at {:#x}>", g.get(*s).addr));
                }
            },
            Value::Generator { kind, qualname, .. } => {
                let q = g.str_of(*qualname).map(|s| s.into_owned()).unwrap_or_default();
                self.out.push_str(&format!("<{kind} object {q} at {addr:#x}>"));
            }
            Value::Rebuilt { type_name, args, .. } if matches!(type_name.as_str(), "staticmethod" | "classmethod" | "slice") => {
                // `slice(1, None, 2)`; `<staticmethod(<function f at 0x...>)>`
                let wrap = type_name != "slice";
                self.out.push_str(if wrap { "<" } else { "" });
                self.out.push_str(type_name);
                self.out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    match a {
                        Some(a) => self.write(*a),
                        None => self.out.push_str("None"),
                    }
                }
                self.out.push(')');
                self.out.push_str(if wrap { ">" } else { "" });
            }
            Value::Range { start, stop, step } => {
                self.out.push_str("range(");
                self.write(*start);
                self.out.push_str(", ");
                self.write(*stop);
                if !matches!(&g.get(*step).value, Value::Int { negative: false, digits } if digits == &[1]) {
                    self.out.push_str(", ");
                    self.write(*step);
                }
                self.out.push(')');
            }
            Value::Exception { args, .. } if !self.own_repr_before_builtin(id, false) => {
                let name = self.type_of(id).map(|t| t.name.clone()).unwrap_or_default();
                self.out.push_str(&name);
                match args.map(|a| &g.get(a).value) {
                    Some(Value::Tuple(items)) if items.len() == 1 => {
                        self.out.push('(');
                        self.write(items[0]);
                        self.out.push(')');
                    }
                    Some(Value::Tuple(items)) => {
                        let items = items.clone();
                        self.seq("(", &items, ")", false);
                    }
                    _ => self.out.push_str("()"),
                }
            }
            _ => self.default_repr(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        for (x, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (f64::INFINITY, "inf"),
            (-f64::INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.5, "2.5"),
            (-1e22, "-1e+22"),
        ] {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn complex_like_python() {
        assert_eq!(complex_repr(1.0, 2.0), "(1+2j)");
        assert_eq!(complex_repr(0.0, 1.0), "1j");
        assert_eq!(complex_repr(-0.0, -1.0), "(-0-1j)");
        assert_eq!(complex_repr(1.5, 0.0), "(1.5+0j)");
    }

    #[test]
    fn strings_like_python() {
        let t = |s: &str| str_repr(&PyStr::Text(s.into()));
        assert_eq!(t("abc"), "'abc'");
        assert_eq!(t("it's"), "\"it's\"");
        assert_eq!(t("both ' \""), "'both \\' \"'");
        assert_eq!(t("a\nb\t\\"), "'a\\nb\\t\\\\'");
        assert_eq!(t("\x00\x7f\u{85}é"), "'\\x00\\x7f\\x85é'");
        assert_eq!(t("日本😀"), "'日本😀'");
        assert_eq!(t("\u{2028}"), "'\\u2028'");
        assert_eq!(str_repr(&PyStr::CodePoints(vec![0xd800])), "'\\ud800'");
        assert_eq!(bytes_repr(b"a'\x00\xff"), "b\"a'\\x00\\xff\"");
    }

    #[test]
    fn big_ints() {
        assert_eq!(int_value(false, &[0, 1]).to_string(), (1u64 << 30).to_string());
        assert_eq!(int_value(true, &[5]).to_string(), "-5");
        assert_eq!(int_value(false, &[]).to_string(), "0");
    }
}
