//! A server node as a real process of the built binary, for what an in-process node cannot
//! show: being killed with SIGKILL.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use privmsg::store::RedisTarget;

use super::{TestRedis, redis_server::free_port};

pub struct NodeProcess {
    pub port: u16,
    child: Child,
}

impl NodeProcess {
    /// Starts `privmsg-server` on a free port against `redis`, with `env` on top.
    pub async fn start(redis: &TestRedis, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_privmsg-server"));
        command
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("CLIENT_DIR", "/nonexistent")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &redis.target {
            RedisTarget::Standalone(url) => command.env("REDIS_URL", url),
            RedisTarget::Cluster(nodes) => command.env("REDIS_CLUSTER_NODES", nodes.join(",")),
        };
        let child = command.spawn().expect("the server binary starts");
        let node = Self { port, child };
        for _ in 0..100 {
            if reqwest::get(format!("{}/healthz", node.url()))
                .await
                .is_ok()
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("privmsg-server did not answer on port {port}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// SIGKILL: no drain, no goodbye, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
