//! The messages pyteleport's processes exchange over pipes, defined once: the Rust side
//! encodes and decodes them with these types, and the Python side (the shim in
//! `pyteleport/__init__.py`, the restore engine) through `pyteleport._native`.
//!
//! * Supervisor → shim, one line each on `--report-fd` ([`Report`]): `reduce ADDR...`
//!   (asks the shim to reduce objects) and `settle` (asks it to let the other threads run
//!   a moment: answered `0`), then one outcome: `error MESSAGE`, `saved PATH`,
//!   or `started PID` followed by `exit CODE` when the new process ends.
//! * Shim → supervisor, one line per `reduce` on `--reply-fd` ([`Reply`]): the address
//!   (`id()`) of a list of reduce tuples, or `error MESSAGE`.
//! * Restore → attacher, on `--ready-fd` ([`Readiness`]): `r` once everything is rebuilt
//!   and entered, or `e` and why not; then the attacher writes [`GO`] on `--wait-fd`
//!   (end of file instead: give up).
//!   A local teleport's restore (on `--snapshot-fd`) does the same: the original lets go
//!   only once the new process has the whole snapshot and has rebuilt it.
//! * Supervisor → a local restore, on `--snapshot-fd`: the snapshot itself, or
//!   [`SHM_MARKER`] followed by the path of a file holding it.
//! * Supervisor → a shell command (`teleport(to_shell=...)`, e.g. `ssh host pyteleport
//!   restore -`), on its standard input: [`CONFIRM_PREAMBLE`], the snapshot's length in
//!   decimal and a newline, then the snapshot. A restore reading that (`pyteleport restore
//!   -`, `python -m pyteleport.restore -`) rebuilds the state, then writes on its standard
//!   output [`READY_MARKER`], a [`Readiness`] and a newline, and runs only once [`GO`]
//!   comes on its standard input (end of file: give up). Output before the marker is
//!   passed on; no marker before the command ends is a failed delivery.
//! * A restored process names its restore driver's code object `sys.<RESTORE_DRIVER_KEY>`:
//!   a teleport from it takes the frames below the driver as pyteleport's, and the
//!   generators in the driver's local [`DRIVER_PENDING_LOCAL`] (tuples, generator first)
//!   as frames outside the running one.

/// A message text on one line (a newline would end the message early).
pub fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Supervisor → shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Reduce the objects at these addresses (what reading memory cannot do).
    Reduce(Vec<u64>),
    /// Let the other threads run a moment (release the GIL briefly), then answer: one
    /// of them was not at a point it can be carried from.
    Settle,
    /// The capture or the delivery failed; the program goes on.
    Error(String),
    /// The snapshot was written to this path.
    Saved(String),
    /// The new process runs with this pid.
    Started(u32),
    /// The new process ended with this status.
    Exit(i32),
}

impl Report {
    /// The line, without its newline.
    pub fn encode(&self) -> String {
        match self {
            Report::Reduce(addrs) => {
                let mut s = String::from("reduce");
                for a in addrs {
                    s.push(' ');
                    s.push_str(&a.to_string());
                }
                s
            }
            Report::Settle => "settle".into(),
            Report::Error(m) => format!("error {}", one_line(m)),
            Report::Saved(p) => format!("saved {}", one_line(p)),
            Report::Started(pid) => format!("started {pid}"),
            Report::Exit(code) => format!("exit {code}"),
        }
    }

    /// A line (surrounding whitespace ignored); None for one that is none of these.
    pub fn decode(line: &str) -> Option<Report> {
        let line = line.trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match word {
            "reduce" => Report::Reduce(rest.split_whitespace().map(|a| a.parse().ok()).collect::<Option<_>>()?),
            "settle" => Report::Settle,
            "error" => Report::Error(rest.to_string()),
            "saved" => Report::Saved(rest.to_string()),
            "started" => Report::Started(rest.trim().parse().ok()?),
            "exit" => Report::Exit(rest.trim().parse().ok()?),
            _ => return None,
        })
    }
}

/// Shim → supervisor, answering a [`Report::Reduce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The address of a list with one reduce tuple per requested object, kept alive by
    /// the shim until it reads the outcome.
    Reduced(u64),
    Error(String),
}

impl Reply {
    pub fn encode(&self) -> String {
        match self {
            Reply::Reduced(addr) => addr.to_string(),
            Reply::Error(m) => format!("error {}", one_line(m)),
        }
    }

    /// Err: the line as it was (neither an address nor an error).
    pub fn decode(line: &str) -> std::result::Result<Reply, String> {
        let line = line.trim();
        if let Some(msg) = line.strip_prefix("error ") {
            return Ok(Reply::Error(msg.to_string()));
        }
        line.parse().map(Reply::Reduced).map_err(|_| line.to_string())
    }
}

/// Restore → attacher: whether the new process rebuilt the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Why not (`Type: message`); the original goes on.
    Failed(String),
}

impl Readiness {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Readiness::Ready => b"r".to_vec(),
            Readiness::Failed(why) => {
                let mut out = b"e".to_vec();
                out.extend_from_slice(one_line(why).as_bytes());
                out
            }
        }
    }

    /// Everything read from the pipe until end of file; None when it said neither (it
    /// died first).
    pub fn decode(data: &[u8]) -> Option<Readiness> {
        match data.split_first() {
            Some((b'r', _)) => Some(Readiness::Ready),
            Some((b'e', why)) => Some(Readiness::Failed(String::from_utf8_lossy(why).into_owned())),
            _ => None,
        }
    }
}

/// Attacher → restore: run now.
pub const GO: &[u8] = b"g";

/// Attacher → restore, just before the move is committed (the original is about to be
/// ended should the sender die): an end of the go pipe after this means "the original
/// is being ended: run once it has", before it "the original runs on: give up".
pub const COMMITTING: &[u8] = b"c";

/// Starts a snapshot sent to a shell command that must confirm its delivery.
pub const CONFIRM_PREAMBLE: &str = "PYTELEPORT-CONFIRM ";

/// Starts the confirmation a restore reading from a shell command's stdin writes on its
/// stdout (the NUL keeps it apart from any program's text).
pub const READY_MARKER: &str = "\0PYTELEPORT-READY:";

/// Starts the message on the snapshot pipe that names a file holding the snapshot.
pub const SHM_MARKER: &str = "\0PYTELEPORT-SHM:";

/// The attribute of `sys` holding the restore driver's code object in a restored process.
pub const RESTORE_DRIVER_KEY: &str = "_pyteleport_restore_driver";

/// The restore driver's local holding the frames not resumed yet.
pub const DRIVER_PENDING_LOCAL: &str = "pending";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_the_lines_the_shim_reads() {
        let cases = [
            (Report::Reduce(vec![1, 140000000000]), "reduce 1 140000000000"),
            (Report::Error("cannot\nread".into()), "error cannot read"),
            (Report::Saved("/tmp/x.snap".into()), "saved /tmp/x.snap"),
            (Report::Started(42), "started 42"),
            (Report::Exit(-3), "exit -3"),
        ];
        for (r, line) in cases {
            assert_eq!(r.encode(), line);
            let back = Report::decode(&format!("{line}\n")).unwrap();
            assert_eq!(back.encode(), line);
        }
        assert_eq!(Report::decode("error "), Some(Report::Error(String::new())));
        assert_eq!(Report::decode(""), None);
        assert_eq!(Report::decode("started x"), None);
        assert_eq!(Report::decode("reduce 1 x"), None);
    }

    #[test]
    fn replies_and_readiness() {
        assert_eq!(Reply::decode("123\n"), Ok(Reply::Reduced(123)));
        assert_eq!(Reply::decode("error no way"), Ok(Reply::Error("no way".into())));
        assert_eq!(Reply::decode("what"), Err("what".into()));
        assert_eq!(Reply::Reduced(7).encode(), "7");
        assert_eq!(Reply::Error("a\nb".into()).encode(), "error a b");
        assert_eq!(Readiness::decode(&Readiness::Ready.encode()), Some(Readiness::Ready));
        assert_eq!(Readiness::Failed("ValueError: x\ny".into()).encode(), b"eValueError: x y");
        assert_eq!(Readiness::decode(b"eboom"), Some(Readiness::Failed("boom".into())));
        assert_eq!(Readiness::decode(b""), None);
    }
}
