//! `datetime`: date, datetime, time, timedelta, timezone, as their pickle forms.

use crate::error::Result;
use crate::process::BuiltinType;
use crate::snapshot::Value;

use super::registry::{CType, Instance};
use super::view::span;
use super::Decoder;

pub static DATE: CType = CType {
    names: &["datetime.date"],
    fields: |l| vec![span(l.date_data, 4)],
    decode: |d, i| {
        let l = d.layout();
        d.decode_packed_date(i, Packed { data: l.date_data, len: 4, fold: None, tz: None })
    },
    shallow: false,
};

pub static DATETIME: CType = CType {
    names: &["datetime.datetime"],
    fields: |l| vec![span(l.datetime_hastzinfo, 1), span(l.datetime_data, 10), span(l.datetime_fold, 1), span(l.datetime_tzinfo, 8)],
    decode: |d, i| {
        let l = d.layout();
        d.decode_packed_date(
            i,
            Packed { data: l.datetime_data, len: 10, fold: Some((l.datetime_fold, 2)), tz: Some((l.datetime_hastzinfo, l.datetime_tzinfo)) },
        )
    },
    shallow: false,
};

pub static TIME: CType = CType {
    names: &["datetime.time"],
    fields: |l| vec![span(l.time_hastzinfo, 1), span(l.time_data, 6), span(l.time_fold, 1), span(l.time_tzinfo, 8)],
    decode: |d, i| {
        let l = d.layout();
        d.decode_packed_date(i, Packed { data: l.time_data, len: 6, fold: Some((l.time_fold, 0)), tz: Some((l.time_hastzinfo, l.time_tzinfo)) })
    },
    shallow: false,
};

/// `timedelta(days, seconds, microseconds)`.
pub static TIMEDELTA: CType = CType {
    names: &["datetime.timedelta"],
    fields: |l| vec![span(l.delta_days, 4), span(l.delta_seconds, 4), span(l.delta_microseconds, 4)],
    decode: |d, i| {
        let (l, addr, v) = (d.layout(), i.addr, &i.view);
        let (days, seconds, micros) = (v.i32(l.delta_days)? as i64, v.i32(l.delta_seconds)? as i64, v.i32(l.delta_microseconds)? as i64);
        let args = vec![d.synthetic_int(addr + 2, days), d.synthetic_int(addr + 3, seconds), d.synthetic_int(addr + 4, micros)];
        d.reduce_by_type(addr, i.type_addr, addr + 5, args, None)
    },
    shallow: false,
};

/// `timezone(offset[, name])`.
pub static TIMEZONE: CType = CType {
    names: &["datetime.timezone"],
    fields: |l| vec![span(l.timezone_offset, 8), span(l.timezone_name, 8)],
    decode: |d, i| {
        let l = d.layout();
        let mut args: Vec<_> = d.object(i.view.ptr(l.timezone_offset)?).into_iter().collect();
        args.extend(d.object(i.view.ptr(l.timezone_name)?));
        d.reduce_by_type(i.addr, i.type_addr, i.addr + 2, args, None)
    },
    shallow: false,
};

/// Where a date, datetime or time keeps its packed bytes, its fold (field, byte of the
/// packed bytes whose top bit carries it) and its tzinfo (flag field, pointer field).
struct Packed {
    data: usize,
    len: usize,
    fold: Option<(usize, usize)>,
    tz: Option<(usize, usize)>,
}

impl<'a> Decoder<'a> {
    /// The pickle form: `cls(packed bytes[, tzinfo])`, fold in the top bit of the month
    /// (datetime) or hour (time) byte.
    fn decode_packed_date(&mut self, inst: &Instance, p: Packed) -> Result<Value> {
        let (addr, v) = (inst.addr, &inst.view);
        let mut packed = v.bytes(p.data, p.len)?.to_vec();
        if let Some((at, byte)) = p.fold {
            if v.u8(at)? != 0 {
                packed[byte] |= 0x80;
            }
        }
        let mut args = vec![self.synthetic(addr + 2, BuiltinType::Bytes, Value::Bytes(packed))];
        if let Some((has_at, tz_at)) = p.tz {
            if v.u8(has_at)? != 0 {
                args.extend(self.object(v.ptr(tz_at)?));
            }
        }
        self.reduce_by_type(addr, inst.type_addr, addr + 3, args, None)
    }
}
