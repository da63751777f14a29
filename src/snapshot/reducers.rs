//! The helpers of `pyteleport._reducers` a snapshot may call in the new process: the one
//! definition of their names and arities on the Rust side. The decoder names a helper
//! only through [`Reducer`]; the native module exports [`Reducer::ALL`] so that a test
//! checks every entry against the Python functions' signatures.

/// The Python module that holds the helpers.
pub const MODULE: &str = "pyteleport._reducers";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reducer {
    /// `reopen(kind, name, mode, position, encoding, errors, newline[, shown_name, pending, pending_at])`
    Reopen,
    /// `closed_file(kind, name, mode)`
    ClosedFile,
    /// `lru_cached(maxsize, typed, func[, entries, kwd_mark, hits, misses])`
    LruCached,
    /// `new_lock(kind, held[, count])`
    NewLock,
    /// `chain_rest(active, source)`
    ChainRest,
    /// `islice_rest(it, start, stop, step)`
    IsliceRest,
    /// `repeat_rest(element, times)`
    RepeatRest,
    /// `cycle_rest(it, saved, index)`
    CycleRest,
    /// `accumulate_rest(it, func, total, initial)`
    AccumulateRest,
    /// `itemgetter_of(nitems, item)`
    ItemGetterOf,
    /// `attrgetter_of(attrs)`
    AttrGetterOf,
    /// `weak_ref(kind, cls, referent, callback)`
    WeakRef,
    /// `csv_reader(source, dialect, line_num)`
    CsvReader,
    /// `csv_writer(write, dialect)`
    CsvWriter,
    /// `csv_dialect(dialect)`
    CsvDialect,
    /// `thread_local(cls, args, kw, data)`
    ThreadLocal,
    /// `sqlite_connection(cls, path, image, isolation_level, autocommit, row_factory, text_factory[, detect_types, check_same_thread])`
    SqliteConnection,
    /// `sqlite_cursor(cls, connection, arraysize, row_factory)`
    SqliteCursor,
}

impl Reducer {
    pub const ALL: &'static [Reducer] = &[
        Reducer::Reopen,
        Reducer::ClosedFile,
        Reducer::LruCached,
        Reducer::NewLock,
        Reducer::ChainRest,
        Reducer::IsliceRest,
        Reducer::RepeatRest,
        Reducer::CycleRest,
        Reducer::AccumulateRest,
        Reducer::ItemGetterOf,
        Reducer::AttrGetterOf,
        Reducer::WeakRef,
        Reducer::CsvReader,
        Reducer::CsvWriter,
        Reducer::CsvDialect,
        Reducer::ThreadLocal,
        Reducer::SqliteConnection,
        Reducer::SqliteCursor,
    ];

    /// The helper a reduce made in Python names as `"pyteleport._reducers.<name>"` (the
    /// code attach runs in the target cannot import pyteleport); None for any other name.
    pub fn from_dotted_name(dotted: &str) -> Option<Reducer> {
        let name = dotted.strip_prefix(MODULE)?.strip_prefix('.')?;
        Reducer::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The function's name in [`MODULE`].
    pub fn name(self) -> &'static str {
        match self {
            Reducer::Reopen => "reopen",
            Reducer::ClosedFile => "closed_file",
            Reducer::LruCached => "lru_cached",
            Reducer::NewLock => "new_lock",
            Reducer::ChainRest => "chain_rest",
            Reducer::IsliceRest => "islice_rest",
            Reducer::RepeatRest => "repeat_rest",
            Reducer::CycleRest => "cycle_rest",
            Reducer::AccumulateRest => "accumulate_rest",
            Reducer::ItemGetterOf => "itemgetter_of",
            Reducer::AttrGetterOf => "attrgetter_of",
            Reducer::WeakRef => "weak_ref",
            Reducer::CsvReader => "csv_reader",
            Reducer::CsvWriter => "csv_writer",
            Reducer::CsvDialect => "csv_dialect",
            Reducer::ThreadLocal => "thread_local",
            Reducer::SqliteConnection => "sqlite_connection",
            Reducer::SqliteCursor => "sqlite_cursor",
        }
    }

    /// (required, total) positional parameters.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Reducer::Reopen => (7, 10),
            Reducer::ClosedFile => (3, 3),
            Reducer::LruCached => (3, 7),
            Reducer::NewLock => (2, 3),
            Reducer::ChainRest => (2, 2),
            Reducer::IsliceRest => (4, 4),
            Reducer::RepeatRest => (2, 2),
            Reducer::CycleRest => (3, 3),
            Reducer::AccumulateRest => (4, 4),
            Reducer::ItemGetterOf => (2, 2),
            Reducer::AttrGetterOf => (1, 1),
            Reducer::WeakRef => (4, 4),
            Reducer::CsvReader => (3, 3),
            Reducer::CsvWriter => (2, 2),
            Reducer::CsvDialect => (1, 1),
            Reducer::ThreadLocal => (4, 4),
            Reducer::SqliteConnection => (7, 9),
            Reducer::SqliteCursor => (4, 4),
        }
    }

    /// Whether a call with `n` positional arguments fits the helper's signature.
    pub fn accepts(self, n: usize) -> bool {
        let (lo, hi) = self.arity();
        (lo..=hi).contains(&n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_arities_ordered() {
        let mut names: Vec<_> = Reducer::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reducer::ALL.len());
        for r in Reducer::ALL {
            let (lo, hi) = r.arity();
            assert!(lo <= hi, "{r:?}");
            assert!(r.accepts(lo) && r.accepts(hi) && !r.accepts(hi + 1));
            assert_eq!(Reducer::from_dotted_name(&format!("{MODULE}.{}", r.name())), Some(*r));
        }
        assert_eq!(Reducer::from_dotted_name("os.system"), None);
        assert_eq!(Reducer::from_dotted_name("pyteleport._reducers.os"), None);
    }
}
