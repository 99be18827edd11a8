//! CPU and memory readings from /proc and the kernel: the load generator's own CPU (to tell when
//! it, not the server, is the bottleneck), and the server's and Redis's CPU and RSS.
//!
//! System calls go through `rustix` (safe wrappers), so this module has no `unsafe`.

use std::time::Instant;

use anyhow::{Context, Result};
use rustix::{
    param::clock_ticks_per_second,
    process::{Resource, Rlimit, getrlimit, setrlimit},
    time::{ClockId, clock_gettime},
};

/// This process's user+system CPU time (all threads), in seconds.
pub fn self_cpu_secs() -> f64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// User+system CPU time of another process (all its threads), in seconds.
pub fn pid_cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = stat_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(ticks as f64 / clock_ticks_per_second().max(1) as f64)
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parens; the fields we want come after
    // its last closing paren, where the state is field 3: utime and stime are at 11 and 12.
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of a process, in KiB (VmRSS of /proc/pid/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// Total RSS of the given processes, in KiB (0 for any that cannot be read).
pub fn total_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).sum()
}

/// Raises this process's open-file soft limit to its hard limit (thousands of sockets need it);
/// returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    // Refused (e.g. by a sandbox): go on with the limit we have; the caller warns if too low.
    setrlimit(Resource::Nofile, raised).ok();
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// CPU of this process, the servers and Redis over one phase.
pub struct Meter {
    wall: Instant,
    own: f64,
    servers: Vec<(u32, f64)>,
    redis: Option<(u32, f64)>,
    threads: usize,
}

impl Meter {
    pub fn start(servers: &[u32], redis: Option<u32>, threads: usize) -> Self {
        Self {
            wall: Instant::now(),
            own: self_cpu_secs(),
            servers: servers
                .iter()
                .map(|&p| (p, pid_cpu_secs(p).unwrap_or(0.0)))
                .collect(),
            redis: redis.map(|p| (p, pid_cpu_secs(p).unwrap_or(0.0))),
            threads,
        }
    }

    /// CPU used since `start`, as a fraction of one core (1.0 = one core busy all along).
    pub fn stop(&self) -> CpuUse {
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        let core = |before: f64, now: f64| (now - before).max(0.0) / wall;
        let loadgen = core(self.own, self_cpu_secs());
        CpuUse {
            wall,
            loadgen,
            servers: self
                .servers
                .iter()
                .map(|&(p, b)| (p, core(b, pid_cpu_secs(p).unwrap_or(b))))
                .collect(),
            redis: self
                .redis
                .map(|(p, b)| (p, core(b, pid_cpu_secs(p).unwrap_or(b)))),
            saturated: loadgen > 0.8 * self.threads as f64,
        }
    }
}

pub struct CpuUse {
    pub wall: f64,
    pub loadgen: f64,
    pub servers: Vec<(u32, f64)>,
    pub redis: Option<(u32, f64)>,
    /// More than 80% of a core per worker thread: the figures may be the load generator's.
    pub saturated: bool,
}

impl CpuUse {
    /// CPU-seconds of all the server processes, summed; None without server pids.
    pub fn server_cpu_secs(&self) -> Option<f64> {
        (!self.servers.is_empty())
            .then(|| self.servers.iter().map(|(_, c)| c).sum::<f64>() * self.wall)
    }

    /// CPU-seconds of Redis; None without its pid.
    pub fn redis_cpu_secs(&self) -> Option<f64> {
        self.redis.map(|(_, c)| c * self.wall)
    }

    pub fn line(&self) -> String {
        let mut line = format!("cpu (cores): loadgen {:.2}", self.loadgen);
        for (pid, c) in &self.servers {
            line += &format!(", server[{pid}] {c:.2}");
        }
        if let Some((_, c)) = self.redis {
            line += &format!(", redis {c:.2}");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name_even_with_spaces_and_parens() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime ...
        let stat = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    150 25 7 3 20 0 8 0 1234 567890 321";
        assert_eq!(stat_cpu_ticks(stat), Some(175));
    }

    #[test]
    fn a_truncated_or_garbled_stat_line_gives_nothing() {
        assert_eq!(stat_cpu_ticks(""), None);
        assert_eq!(stat_cpu_ticks("4242 (srv S 1 2 3"), None);
        assert_eq!(
            stat_cpu_ticks("4242 (srv) S 1 4242 4242 0 -1 0 0 0 0 0 150"),
            None
        );
        assert_eq!(
            stat_cpu_ticks("4242 (srv) S 1 4242 4242 0 -1 0 0 0 0 0 x 25"),
            None
        );
    }

    #[test]
    fn our_own_process_can_be_measured() {
        let pid = std::process::id();
        let before = pid_cpu_secs(pid).unwrap();
        let own = self_cpu_secs();
        // Burn a little CPU so that the clock moves.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu_secs() > own);
        assert!(pid_cpu_secs(pid).unwrap() >= before);
        assert!(rss_kib(pid).unwrap() > 0);
    }

    #[test]
    fn the_fd_limit_is_at_least_what_we_started_with() {
        let before = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        assert!(raise_fd_limit() >= before);
    }

    #[test]
    fn cpu_seconds_are_cores_times_wall_time_summed_over_servers() {
        let cpu = CpuUse {
            wall: 2.0,
            loadgen: 0.1,
            servers: vec![(1, 0.5), (2, 0.25)],
            redis: Some((3, 0.1)),
            saturated: false,
        };
        assert_eq!(cpu.server_cpu_secs(), Some(1.5));
        assert_eq!(cpu.redis_cpu_secs(), Some(0.2));
        let none = CpuUse {
            servers: vec![],
            redis: None,
            ..cpu
        };
        assert_eq!(none.server_cpu_secs(), None);
        assert_eq!(none.redis_cpu_secs(), None);
    }
}
