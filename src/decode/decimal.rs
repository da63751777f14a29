//! `decimal.Decimal`: made again from the exact string of its libmpdec value.

use crate::error::{Error, Result};
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::{span, words};
use super::Decoder;

pub static DECIMAL: CType = CType {
    names: &["decimal.Decimal"],
    fields: |l| vec![span(l.decimal_flags, 1), span(l.decimal_exp, 8), span(l.decimal_len, 8), span(l.decimal_data, 8)],
    decode: decode_decimal,
    shallow: false,
};

fn decode_decimal(d: &mut Decoder<'_>, inst: &Instance) -> Result<Value> {
    let addr = inst.addr;
    let text = d.decimal_text(inst)?;
    let text = d.synthetic_str(addr + 2, text);
    d.reduce_by_type(addr, inst.type_addr, addr + 3, vec![text], None)
}

impl<'a> Decoder<'a> {
    /// A Decimal as the exact string it is made from again: sign, the coefficient (libmpdec
    /// words of 19 decimal digits, least significant first) and the exponent.
    fn decimal_text(&mut self, inst: &Instance) -> Result<String> {
        const NEGATIVE: u8 = 1;
        const INFINITE: u8 = 2;
        const NAN: u8 = 4;
        const SIGNALING_NAN: u8 = 8;
        let (l, addr, v) = (self.layout(), inst.addr, &inst.view);
        let (flags, exp, len, data) = (v.u8(l.decimal_flags)?, v.i64(l.decimal_exp)?, v.i64(l.decimal_len)?, v.ptr(l.decimal_data)?);
        if !(0..1 << 24).contains(&len) {
            return Err(Error::corrupt(addr, "Decimal with an impossible length"));
        }
        let words: Vec<u64> = words(&self.read(data, len as usize * 8)?).collect();
        let mut digits = String::new();
        for (i, w) in words.iter().rev().enumerate() {
            if *w >= 10_000_000_000_000_000_000 {
                return Err(Error::corrupt(addr, "Decimal word out of range"));
            }
            if i == 0 {
                digits.push_str(&w.to_string())
            } else {
                digits.push_str(&format!("{w:019}"))
            }
        }
        let sign = if flags & NEGATIVE != 0 { "-" } else { "" };
        Ok(if flags & INFINITE != 0 {
            format!("{sign}Infinity")
        } else if flags & (NAN | SIGNALING_NAN) != 0 {
            // A NaN's payload is its coefficient (shown only when not zero).
            let payload = digits.trim_start_matches('0');
            format!("{sign}{}{payload}", if flags & SIGNALING_NAN != 0 { "sNaN" } else { "NaN" })
        } else {
            format!("{sign}{}E{exp}", if digits.is_empty() { "0" } else { &digits })
        })
    }
}
