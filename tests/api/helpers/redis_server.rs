//! A private Redis for each test: a `redis-server` on a free port in a temporary folder, or a
//! 3-master Redis Cluster; or the one `REDIS_URL` / `REDIS_CLUSTER_NODES` names.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use privmsg::store::{Conn, RedisPool, RedisTarget};

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
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Self::external(RedisTarget::Standalone(url));
        }
        Self::spawn_standalone(&[]).await
    }

    /// A standalone Redis of its own (never `REDIS_URL`: tests stop it) that writes every
    /// change to its append-only file, so a restart finds all acknowledged writes.
    pub async fn start_durable() -> Self {
        Self::spawn_standalone(&["--appendonly", "yes", "--appendfsync", "always"]).await
    }

    /// A standalone Redis that speaks only TLS and wants a password: `rediss://:PASSWORD@...`,
    /// with a self-signed certificate made by `openssl` (hence `#insecure`).
    pub async fn start_tls(password: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(made.success(), "a self-signed certificate");
        let port = free_port();
        let process = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
            .args(["--tls-ca-cert-file", "cert.pem", "--tls-auth-clients", "no"])
            .args([
                "--requirepass",
                password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let url = format!("rediss://:{password}@127.0.0.1:{port}/#insecure");
        let redis = Self {
            target: RedisTarget::Standalone(url),
            processes: vec![process],
            _dir: Some(dir),
            restart: None,
        };
        assert!(redis.wait_ready().await, "TLS redis-server answers");
        redis
    }

    async fn spawn_standalone(extra: &[&str]) -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let process = spawn_redis(port, &dir, extra);
            let redis = Self {
                target: RedisTarget::Standalone(format!("redis://127.0.0.1:{port}")),
                processes: vec![process],
                _dir: Some(dir),
                restart: Some((port, extra.iter().map(|a| a.to_string()).collect())),
            };
            if redis.wait_ready().await {
                return redis;
            }
        }
        panic!("could not start redis-server");
    }

    /// Stops the standalone server (SIGTERM: it flushes its append-only file and exits).
    pub fn stop(&mut self) {
        for mut process in self.processes.drain(..) {
            let _ = Command::new("kill").arg(process.id().to_string()).status();
            let _ = process.wait();
        }
    }

    /// Starts the stopped standalone server again, on the same port with the same data.
    pub async fn restart(&mut self) {
        let (port, extra) = self.restart.clone().expect("a server this helper started");
        let dir = self._dir.as_ref().expect("its data dir").path().to_owned();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.processes.push(spawn_redis(port, dir, &extra));
        assert!(self.wait_ready().await, "redis-server restarted");
    }

    /// A Redis Cluster of three masters (no replicas), created with `redis-cli --cluster`.
    pub async fn start_cluster() -> Self {
        if let Ok(nodes) = std::env::var("REDIS_CLUSTER_NODES") {
            let nodes = nodes.split(',').map(|n| format!("redis://{n}")).collect();
            return Self::external(RedisTarget::Cluster(nodes));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut processes = Vec::new();
        for port in &ports {
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let conf = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ];
            processes.push(spawn_redis(*port, &node_dir, &conf));
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let redis = Self {
            target: RedisTarget::Cluster(
                addresses.iter().map(|a| format!("redis://{a}")).collect(),
            ),
            processes,
            _dir: Some(dir),
            restart: None,
        };
        for port in &ports {
            assert!(
                ping(&format!("redis://127.0.0.1:{port}")).await,
                "cluster node up"
            );
        }
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-yes")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(created.success(), "redis-cli --cluster create");
        for port in &ports {
            wait_cluster_ok(*port).await;
        }
        redis
    }

    fn external(target: RedisTarget) -> Self {
        Self {
            target,
            processes: Vec::new(),
            _dir: None,
            restart: None,
        }
    }

    async fn wait_ready(&self) -> bool {
        match &self.target {
            RedisTarget::Standalone(url) => ping(url).await,
            RedisTarget::Cluster(_) => true,
        }
    }

    /// A direct connection, for arranging data and checking what the server wrote.
    pub async fn conn(&self) -> Conn {
        let pool = RedisPool::new(&self.target, 1, Default::default()).expect("pool");
        pool.get().await.expect("redis answers")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn spawn_redis(port: u16, dir: impl AsRef<std::path::Path>, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.as_ref())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (see README)")
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    for _ in 0..100 {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn wait_cluster_ok(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
    for _ in 0..200 {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && let Ok(info) = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async::<String>(&mut conn)
                .await
            && info.contains("cluster_state:ok")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cluster did not become ok");
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
