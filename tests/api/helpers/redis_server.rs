//! A private Redis for each test: a `redis-server` on a free port in a temporary folder, or a
//! 3-master Redis Cluster; or the one `TEST_REDIS_URL` / `TEST_REDIS_CLUSTER_NODES` names.
//! Test-only names, so that the server's own `REDIS_URL` in a developer's shell never points
//! the suite (which writes and flushes test data) at real data.

use std::{net::TcpListener, path::Path, process::Stdio, time::Duration};

use privmsg::store::{Conn, RedisPool, RedisTarget};
use tokio::process::{Child, Command};

use super::wait::{eventually, poll};

/// How long a freshly spawned redis-server has to answer before it is tried on another port.
const START: Duration = Duration::from_secs(5);

pub struct TestRedis {
    pub target: RedisTarget,
    processes: Vec<Child>,
    _dir: Option<tempfile::TempDir>,
    /// How to start the standalone server again after [`TestRedis::stop`].
    restart: Option<(u16, Vec<String>)>,
}

impl TestRedis {
    /// A standalone Redis.
    pub async fn start() -> Self {
        if let Ok(url) = std::env::var("TEST_REDIS_URL") {
            return Self::external(RedisTarget::Standalone(url));
        }
        Self::spawn_standalone(&[]).await
    }

    /// A standalone Redis of its own (never `TEST_REDIS_URL`: tests stop it) that writes every
    /// change to its append-only file, so a restart finds all acknowledged writes.
    pub async fn start_durable() -> Self {
        Self::spawn_standalone(&["--appendonly", "yes", "--appendfsync", "always"]).await
    }

    /// A standalone Redis that speaks only TLS and wants a password: `rediss://:PASSWORD@...`,
    /// with a self-signed certificate made by `openssl` (hence `#insecure`).
    pub async fn start_tls(password: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .args(["-subj", "/CN=127.0.0.1"])
            .current_dir(dir.path()))
        .await;
        for _ in 0..5 {
            let port = free_port();
            let mut process = Command::new("redis-server")
                .args(["--port", "0", "--bind", "127.0.0.1"])
                .args(["--tls-port", &port.to_string()])
                .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
                .args(["--tls-ca-cert-file", "cert.pem", "--tls-auth-clients", "no"])
                .args(["--requirepass", password])
                .args(["--save", "", "--appendonly", "no"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server is installed");
            let url = format!("rediss://:{password}@127.0.0.1:{port}/#insecure");
            if answers_as(&url, &mut process).await {
                return Self {
                    target: RedisTarget::Standalone(url),
                    processes: vec![process],
                    _dir: Some(dir),
                    restart: None,
                };
            }
        }
        panic!("could not start a TLS redis-server");
    }

    pub(super) async fn spawn_standalone(extra: &[&str]) -> Self {
        // The free port can be taken between the probe and redis-server's bind: try a few.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let url = format!("redis://127.0.0.1:{port}");
            let mut process = spawn_redis(port, dir.path(), extra);
            if answers_as(&url, &mut process).await {
                return Self {
                    target: RedisTarget::Standalone(url),
                    processes: vec![process],
                    _dir: Some(dir),
                    restart: Some((port, extra.iter().map(|a| a.to_string()).collect())),
                };
            }
        }
        panic!("could not start redis-server");
    }

    /// Stops the standalone server (SIGTERM: it flushes its append-only file and exits), and
    /// returns once it has exited, so that its port is free for [`TestRedis::restart`].
    pub async fn stop(&mut self) {
        for mut process in self.processes.drain(..) {
            if let Some(pid) = process.id() {
                terminate(pid);
            }
            let _ = process.wait().await;
        }
    }

    /// Kills the standalone server with SIGKILL (a crash: nothing flushed, no goodbye to its
    /// replicas), and returns once it has exited, so that its port is free for
    /// [`TestRedis::restart`].
    pub async fn crash(&mut self) {
        for mut process in self.processes.drain(..) {
            let _ = process.kill().await;
        }
    }

    /// Starts the stopped standalone server again, on the same port with the same data.
    pub async fn restart(&mut self) {
        self.restart_with(&[]).await;
    }

    /// [`TestRedis::restart`] with `more` arguments (e.g. `--replicaof`: a dead master brought
    /// back as the replica of the one that took over, as an operator would).
    pub async fn restart_with(&mut self, more: &[&str]) {
        let (port, extra) = self.restart.clone().expect("a server this helper started");
        let RedisTarget::Standalone(url) = self.target.clone() else {
            unreachable!("a standalone server")
        };
        let dir = self._dir.as_ref().expect("its data dir").path();
        let extra: Vec<&str> = extra
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
            .collect();
        let mut process = spawn_redis(port, dir, &extra);
        assert!(
            answers_as(&url, &mut process).await,
            "redis-server restarted on port {port}"
        );
        self.processes.push(process);
    }

    /// A Redis Cluster of three masters (no replicas), created with `redis-cli --cluster`.
    pub async fn start_cluster() -> Self {
        if let Ok(nodes) = std::env::var("TEST_REDIS_CLUSTER_NODES") {
            let nodes = nodes.split(',').map(|n| format!("redis://{n}")).collect();
            return Self::external(RedisTarget::Cluster(nodes));
        }
        for _ in 0..5 {
            if let Some(cluster) = Self::spawn_cluster().await {
                return cluster;
            }
        }
        panic!("could not start a Redis Cluster");
    }

    /// Three nodes on free ports made into a cluster; `None` if a port was taken meanwhile.
    async fn spawn_cluster() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut processes = Vec::new();
        for port in &ports {
            let node_dir = dir.path().join(port.to_string());
            tokio::fs::create_dir_all(&node_dir)
                .await
                .expect("node dir");
            let conf = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ];
            processes.push(spawn_redis(*port, &node_dir, &conf));
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        for (address, process) in addresses.iter().zip(&mut processes) {
            if !answers_as(&format!("redis://{address}"), process).await {
                return None;
            }
        }
        run(Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .arg("--cluster-yes"))
        .await;
        for address in &addresses {
            let url = format!("redis://{address}");
            eventually(
                async || {
                    info(&url, "CLUSTER", "INFO")
                        .await
                        .contains("cluster_state:ok")
                },
                &format!("cluster_state:ok on {address}"),
            )
            .await;
        }
        Some(Self {
            target: RedisTarget::Cluster(
                addresses.iter().map(|a| format!("redis://{a}")).collect(),
            ),
            processes,
            _dir: Some(dir),
            restart: None,
        })
    }

    pub(super) fn external(target: RedisTarget) -> Self {
        Self {
            target,
            processes: Vec::new(),
            _dir: None,
            restart: None,
        }
    }

    /// A direct connection, for arranging data and checking what the server wrote.
    pub async fn conn(&self) -> Conn {
        let pool = RedisPool::new(&self.target, 1, Default::default()).expect("pool");
        pool.get().await.expect("redis answers")
    }
}

/// Runs a setup program to its end; panics, with its output, when it fails.
pub(super) async fn run(command: &mut Command) {
    let program = command.as_std().get_program().to_owned();
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program:?} is installed (see README): {e}"));
    assert!(
        output.status.success(),
        "{program:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(super) fn spawn_redis(port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // SIGKILL when the test ends, panicking or not; tokio reaps it.
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed (see README)")
}

/// Whether `process` answers at `url`: false as soon as it exits (its port was taken), and
/// false when another test's Redis, which took the port first, is the one answering.
pub(super) async fn answers_as(url: &str, process: &mut Child) -> bool {
    let Some(pid) = process.id() else {
        return false;
    };
    let own = format!("process_id:{pid}");
    let answered = poll(START, async || {
        if let Ok(Some(_)) = process.try_wait() {
            return Some(false);
        }
        let server = info(url, "INFO", "server").await;
        (!server.is_empty()).then(|| server.lines().any(|line| line.trim() == own))
    })
    .await;
    answered == Ok(true)
}

/// The answer to `command subcommand` at `url`, or "" while it does not answer.
async fn info(url: &str, command: &str, subcommand: &str) -> String {
    let Ok(client) = redis::Client::open(url) else {
        return String::new();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return String::new();
    };
    redis::cmd(command)
        .arg(subcommand)
        .query_async::<String>(&mut conn)
        .await
        .unwrap_or_default()
}

/// SIGTERM, without waiting: a graceful stop the caller may wait for.
pub(super) fn terminate(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) only sends a signal; a pid that is gone yields ESRCH, which is fine.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
