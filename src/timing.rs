//! Phase timings on stderr when PYTELEPORT_TIMINGS is set (for profiling, off by default).

use std::time::Instant;

pub struct Clock {
    name: &'static str,
    start: Instant,
    on: bool,
}

impl Clock {
    pub fn start(name: &'static str) -> Clock {
        Clock { name, start: Instant::now(), on: std::env::var_os("PYTELEPORT_TIMINGS").is_some() }
    }

    pub fn mark(&self, what: &str) {
        if self.on {
            eprintln!("[pyteleport {}] {:8.2} ms  {what}", self.name, self.start.elapsed().as_secs_f64() * 1e3);
        }
    }
}
