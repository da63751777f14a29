//! `operator.itemgetter` and `attrgetter` (sort keys kept in a variable), made again by
//! `pyteleport._reducers` helpers.

use crate::snapshot::reducers::Reducer;

use super::itertools::{or_none, rest};
use super::registry::CType;
use super::view::span;

pub static ITEMGETTER: CType = CType {
    names: &["operator.itemgetter"],
    fields: |l| vec![span(l.itemgetter_nitems, 8), span(l.itemgetter_item, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let nitems = Some(d.synthetic_int(i.addr + 2, i.view.i64(l.itemgetter_nitems)?));
        let args = vec![nitems, or_none(d, i, l.itemgetter_item, none)?];
        rest(d, i, Reducer::ItemGetterOf, args)
    },
    shallow: false,
};

pub static ATTRGETTER: CType = CType {
    names: &["operator.attrgetter"],
    fields: |l| vec![span(l.attrgetter_attr, 8)],
    decode: |d, i| {
        let (l, none) = (d.layout(), d.none_id());
        let args = vec![or_none(d, i, l.attrgetter_attr, none)?];
        rest(d, i, Reducer::AttrGetterOf, args)
    },
    shallow: false,
};
