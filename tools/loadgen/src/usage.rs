//! CPU and memory readings from /proc and getrusage: the load generator's own CPU (to tell when
//! it, not the server, is the bottleneck), and the server's and Redis's CPU and RSS.

use std::time::Instant;

use anyhow::{Context, Result};

/// This process's user+system CPU time, in seconds.
pub fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// User+system CPU time of another process, in seconds (fields 14 and 15 of /proc/pid/stat).
pub fn pid_cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may contain spaces; the fields we want come after its closing paren.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // After the paren: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Ok((ticks(11) + ticks(12)) / hz)
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

/// Raises this process's open-file soft limit to its hard limit: thousands of sockets need it.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: get/setrlimit only read and write the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
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
