//! Thread and process facts read from `/proc`.

use std::path::PathBuf;

use crate::error::{check_pid, proc_io_error, Error, Result};

/// Thread ids of `pid`, from `/proc/PID/task`, sorted with the thread-group
/// leader (tid == pid) first when it is still listed.
pub fn list_threads(pid: i32) -> Result<Vec<i32>> {
    check_pid(pid)?;
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| proc_io_error(pid, format!("reading {dir}"), e))?;
    let mut tids = Vec::new();
    for entry in entries {
        // An entry can vanish between readdir calls when a thread exits.
        let Ok(entry) = entry else { continue };
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            tids.push(tid);
        }
    }
    // Leader first, the rest in numeric order: stable and predictable for callers.
    tids.sort_by_key(|&t| (t != pid, t));
    Ok(tids)
}

/// The `comm` name of a thread, without the trailing newline.
pub fn thread_name(pid: i32, tid: i32) -> Option<String> {
    if pid <= 0 || tid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// Scheduler state letter of a thread (`R`, `S`, `D`, `T`, `t`, `Z`, `X`, ...).
pub fn thread_state(pid: i32, tid: i32) -> Option<char> {
    if pid <= 0 || tid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat_state(&stat)
}

/// The state field follows the parenthesised comm, which may itself contain
/// spaces and parentheses, so split at the last ')'.
fn parse_stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Pid of the process tracing `pid`, if any (`TracerPid` in `/proc/PID/status`).
pub fn tracer_pid(pid: i32) -> Option<i32> {
    if pid <= 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok()).filter(|&t: &i32| t != 0)
}

/// Whether a live (non-zombie) process with this pid exists.
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // Signal 0 checks existence without sending anything; EPERM still means "exists".
    // SAFETY: kill takes integers only; with signal 0 nothing is sent (only existence
    // and permission are checked), and pid > 0 (checked above) names one process,
    // never a group or every process.
    let rc = unsafe { libc::kill(pid, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    // A zombie answers kill(0) but cannot be worked on. A zombie leader with
    // live threads (main thread called pthread_exit) still counts as alive.
    match thread_state(pid, pid) {
        Some('Z') | Some('X') => list_threads(pid).map(|t| t.iter().any(|&t| t != pid)).unwrap_or(false),
        Some(_) => true,
        None => false,
    }
}

/// Path of the process' executable (`/proc/PID/exe`), as seen from the
/// target's mount namespace.
pub fn exe_path(pid: i32) -> Result<PathBuf> {
    check_pid(pid)?;
    let link = format!("/proc/{pid}/exe");
    std::fs::read_link(&link).map_err(|e| match proc_io_error(pid, format!("reading {link}"), e) {
        // Kernel threads and zombies have no exe link, but the pid exists.
        Error::NoSuchProcess { .. } if process_exists(pid) => Error::Io {
            context: format!("{link}: process has no executable (kernel thread or zombie)"),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_with_tricky_comm() {
        assert_eq!(parse_stat_state("12 (a) b) (c) S 1 2 3"), Some('S'));
        assert_eq!(parse_stat_state("12 (x) t 1"), Some('t'));
        assert_eq!(parse_stat_state("garbage"), None);
        assert_eq!(parse_stat_state("1 (x)"), None);
    }

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        assert!(process_exists(me));
        let tids = list_threads(me).unwrap();
        assert_eq!(tids[0], me);
        assert!(thread_name(me, me).is_some());
        assert!(exe_path(me).unwrap().is_absolute());
    }

    #[test]
    fn bad_pids() {
        for pid in [0, -1, -12345, i32::MAX] {
            assert!(!process_exists(pid));
            assert!(matches!(list_threads(pid), Err(Error::NoSuchProcess { .. })));
            assert!(matches!(exe_path(pid), Err(Error::NoSuchProcess { .. })));
            assert_eq!(thread_name(pid, pid), None);
        }
    }
}
