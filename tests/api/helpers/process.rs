//! A server node as a real process of the built binary, for what an in-process node cannot
//! show: being killed with SIGKILL, or its own memory.

use std::{
    net::TcpListener,
    process::Stdio,
    sync::{Arc, Mutex},
};

use privmsg::store::RedisTarget;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use super::{Scraped, Server, TestRedis, redis_server::free_port, wait::eventually};

/// What a node adds to its PORT for its metrics port when METRICS_ADDR is not set.
const METRICS_PORT_OFFSET: u16 = 6091;

pub struct NodeProcess {
    pub port: u16,
    pub metrics_port: u16,
    child: Child,
    /// Every line it logged so far.
    log: Log,
}

type Log = Arc<Mutex<Vec<String>>>;

impl NodeProcess {
    /// Starts `privmsg-server` against `redis` with `env` and nothing else from this
    /// environment (a developer's `REDIS_URL` must not reach it), on port 0: it logs the port
    /// it bound, so no other process can be the one answering there.
    pub async fn start(redis: &TestRedis, env: &[(&str, &str)]) -> Self {
        Self::try_start(redis, env, &[])
            .await
            .expect("privmsg-server started (its log is above)")
    }

    /// As [`NodeProcess::start`], without the variables `unset` (so that their defaults
    /// apply); `None` when the process exits before it serves (a port it was given is taken).
    pub async fn try_start(
        redis: &TestRedis,
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> Option<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_privmsg-server"));
        command
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("CLIENT_DIR", "/nonexistent")
            .env("METRICS_ADDR", "127.0.0.1:0")
            // Every test client comes from 127.0.0.1.
            .env("NEW_SESSIONS_PER_MINUTE", "1000000")
            .env("NEW_SESSIONS_BURST", "1000000")
            .envs(std::env::var("RUST_LOG").map(|filter| ("RUST_LOG", filter)))
            .envs(
                super::jwt_mode()
                    .then_some([("AUTH", "jwt"), ("JWT_SECRET", super::TEST_JWT_SECRET)])
                    .into_iter()
                    .flatten(),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in unset {
            command.env_remove(name);
        }
        match &redis.target {
            RedisTarget::Standalone(url) => command.env("REDIS_URL", url),
            RedisTarget::Cluster(nodes) => command.env("REDIS_CLUSTER_NODES", nodes.join(",")),
            RedisTarget::Sentinel(set) => command
                .env("REDIS_SENTINELS", set.sentinels.join(","))
                .env("REDIS_SENTINEL_MASTER", &set.master),
        };
        let mut child = command.spawn().expect("the server binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        // Its log goes to the test's output, shown when the test fails.
        let log = Log::default();
        let lines = BufReader::new(stderr).lines();
        tokio::spawn(forward(lines, log.clone(), None, None));
        let (bound, port) = tokio::sync::oneshot::channel();
        let (metrics_bound, metrics_port) = tokio::sync::oneshot::channel();
        let lines = BufReader::new(stdout).lines();
        tokio::spawn(forward(
            lines,
            log.clone(),
            Some(bound),
            Some(metrics_bound),
        ));
        let (port, metrics_port) =
            tokio::time::timeout(super::WAIT, async { (port.await, metrics_port.await) })
                .await
                .expect("privmsg-server logs its ports in time");
        let (port, metrics_port) = (port.ok()?, metrics_port.ok()?);
        let node = Self {
            port,
            metrics_port,
            child,
            log,
        };
        let health = format!("{}/healthz", node.url());
        eventually(
            async || {
                reqwest::get(&health)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
            &format!("privmsg-server to answer on port {port}"),
        )
        .await;
        Some(node)
    }

    /// A node on a free PORT without METRICS_ADDR, so that it serves its metrics on its
    /// default port, PORT + 6091: both free when picked, and other ones tried if either is
    /// taken before the node binds it.
    pub async fn start_with_default_metrics(redis: &TestRedis, env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            let port = free_port_with_free_metrics_port().to_string();
            let env = [&[("PORT", port.as_str())], env].concat();
            if let Some(node) = Self::try_start(redis, &env, &["METRICS_ADDR"]).await {
                return node;
            }
        }
        panic!("privmsg-server did not start with its default metrics port (its log is above)");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's resident memory, in KiB.
    pub async fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the server process is alive");
        let status = tokio::fs::read_to_string(format!("/proc/{pid}/status"))
            .await
            .expect("the server process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// SIGKILL: no drain, no goodbye, as in a crash. Returns once the process is gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, as an orchestrator stopping the node: it drains, then exits. Returns once the
    /// process is gone.
    pub async fn terminate(&mut self) {
        self.sigterm().await;
        let exited = tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait());
        assert!(exited.await.is_ok(), "the node exits after its drain");
    }

    /// Sends SIGTERM and returns at once, for a test that watches the node stop
    /// ([`NodeProcess::exited`], [`NodeProcess::logged`]).
    pub async fn sigterm(&mut self) {
        self.signal("-TERM").await;
    }

    /// SIGSTOP: the process freezes (as in a long GC pause or a suspended VM), its sockets
    /// stay open; [`NodeProcess::resume`] thaws it.
    pub async fn pause(&mut self) {
        self.signal("-STOP").await;
    }

    /// SIGCONT, after [`NodeProcess::pause`].
    pub async fn resume(&mut self) {
        self.signal("-CONT").await;
    }

    async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().expect("the server process is alive");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "{signal} sent to {pid}");
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the process's status")
            .is_some()
    }

    /// Whether the node logged a line containing `text` so far.
    pub fn logged(&self, text: &str) -> bool {
        let log = self.log.lock().expect("the log");
        log.iter().any(|line| line.contains(text))
    }
}

impl Server for NodeProcess {
    fn url(&self) -> String {
        NodeProcess::url(self)
    }
}

impl Scraped for NodeProcess {
    fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }
}

type PortSender = Option<tokio::sync::oneshot::Sender<u16>>;

/// Copies a node's log lines to the test's output and to `log`; the first `listening on`
/// line's port goes to `bound`, the first `metrics on` line's to `metrics`.
async fn forward<R: tokio::io::AsyncBufRead + Unpin>(
    mut lines: tokio::io::Lines<R>,
    log: Log,
    mut bound: PortSender,
    mut metrics: PortSender,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[node] {line}");
        if let Ok(mut log) = log.lock() {
            log.push(line.clone());
        }
        for (prefix, sender) in [("listening on", &mut bound), ("metrics on", &mut metrics)] {
            if let Some(port) = logged_port(&line, prefix)
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(port);
            }
        }
    }
}

/// The port of a `{prefix} http://127.0.0.1:PORT...` log line.
fn logged_port(line: &str, prefix: &str) -> Option<u16> {
    let (_, address) = line.split_once(&format!("{prefix} http://"))?;
    let address = address.split_whitespace().next()?;
    let (_, port) = address.split('/').next()?.rsplit_once(':')?;
    let digits: String = port.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A free port whose default metrics port, 6091 above it, is free too (and within range).
fn free_port_with_free_metrics_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        let metrics = port.checked_add(METRICS_PORT_OFFSET);
        if metrics.is_some_and(|metrics| TcpListener::bind(("127.0.0.1", metrics)).is_ok()) {
            return port;
        }
    }
    panic!("no free port whose port + {METRICS_PORT_OFFSET} is free");
}
