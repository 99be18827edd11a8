//! nginx in front of test nodes, configured by the deployment's own template
//! (`deploy/nginx.conf.template`, rendered by `deploy/render-nginx`), so the tests exercise
//! exactly what `scripts/run-nodes` and docker-compose run.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
};

use rust_socketio::TransportType;
use serde_json::Value;
use tokio::process::{Child, Command};

use super::{
    Connected, Server, TestApp, TestClient, WAIT,
    redis_server::{free_port, terminate},
    wait::{eventually, poll},
};

pub struct TestNginx {
    pub port: u16,
    process: Child,
    dir: tempfile::TempDir,
}

impl TestNginx {
    /// Starts nginx on a free port in front of `nodes` and waits until a request through it
    /// reaches a node.
    pub async fn start(nodes: &[&TestApp]) -> Self {
        let bin = nginx_bin().await;
        let upstreams: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        // The free port can be taken between the probe and nginx's bind: try a few.
        for _ in 0..5 {
            let mut nginx = Self::spawn(bin, free_port(), &upstreams).await;
            if nginx.wait_ready().await {
                return nginx;
            }
        }
        panic!("nginx did not start; see its error.log above");
    }

    async fn spawn(bin: &str, port: u16, upstreams: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Run as root, nginx's workers switch to `nobody`: let them into their temp folders.
        tokio::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .await
            .expect("chmod temp dir");
        let prefix = dir.path().to_str().expect("utf-8 temp path");
        let rendered = Command::new(repo_file("deploy/render-nginx"))
            .arg(port.to_string())
            .args([prefix, prefix])
            .args(upstreams)
            .output()
            .await
            .expect("deploy/render-nginx runs");
        assert!(
            rendered.status.success(),
            "deploy/render-nginx: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let conf = dir.path().join("nginx.conf");
        tokio::fs::write(&conf, rendered.stdout)
            .await
            .expect("write nginx.conf");
        let process = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // The error log nginx uses before it has read the config (default: /var/log).
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        Self { port, process, dir }
    }

    /// Whether this nginx serves its port: false as soon as it exits (its port was taken),
    /// and false when another process, which took the port first, is the one answering
    /// (a marked request must show in this nginx's own access log).
    async fn wait_ready(&mut self) -> bool {
        let probe = uuid::Uuid::new_v4().simple().to_string();
        let url = format!("{}/healthz?ready={probe}", self.url());
        let mut answered = false;
        let ready = poll(WAIT, async || {
            if let Ok(Some(_)) = self.process.try_wait() {
                return Some(false);
            }
            if answered {
                // nginx writes the line after it has answered.
                return self
                    .log("access.log")
                    .await
                    .contains(&probe)
                    .then_some(true);
            }
            answered = reqwest::get(&url)
                .await
                .is_ok_and(|response| response.status().is_success());
            None
        })
        .await;
        if ready != Ok(true) {
            eprintln!("nginx error.log:\n{}", self.log("error.log").await);
        }
        ready == Ok(true)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connects through nginx with `auth` and reads `session` and `users`.
    pub async fn join(&self, auth: Value, transport: TransportType) -> Connected {
        TestClient::join_url(self.url(), auth, transport).await
    }

    /// The port of the node that nginx sends this machine's requests to now. Every test
    /// client comes from 127.0.0.1, so `hash $remote_addr` sends them all to one node: the
    /// one that serves a marked probe request, as the access log's `upstream=` field says.
    pub async fn serving_node(&self) -> u16 {
        let probe = uuid::Uuid::new_v4().simple().to_string();
        let url = format!("{}/healthz?probe={probe}", self.url());
        let response = reqwest::get(&url).await.expect("probe through nginx");
        assert!(
            response.status().is_success(),
            "probe: {}",
            response.status()
        );
        // nginx writes the line after it has answered.
        let line = eventually(
            async || {
                let log = self.log("access.log").await;
                let line = log.lines().find(|line| line.contains(&probe));
                line.map(str::to_owned).ok_or(log)
            },
            &format!("probe {probe} in access.log"),
        )
        .await;
        upstream_port(&line)
    }

    async fn log(&self, name: &str) -> String {
        tokio::fs::read_to_string(self.dir.path().join(name))
            .await
            .unwrap_or_default()
    }
}

impl Server for TestNginx {
    fn url(&self) -> String {
        TestNginx::url(self)
    }
}

impl Drop for TestNginx {
    fn drop(&mut self) {
        // SIGKILL to the master only would leave its workers serving the port: ask the master
        // to stop them all (fast shutdown). Not waited for here (a drop cannot await):
        // tokio reaps it, and every test has a port of its own.
        if let Ok(None) = self.process.try_wait()
            && let Some(pid) = self.process.id()
        {
            terminate(pid);
        }
    }
}

/// The nginx binary. Debian puts it in /usr/sbin, which is not on a normal user's PATH.
/// The tests need a real one (scripts/test installs it): never skip silently.
async fn nginx_bin() -> &'static str {
    for bin in ["nginx", "/usr/sbin/nginx"] {
        let version = Command::new(bin)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .await;
        if version.is_ok_and(|status| status.success()) {
            return bin;
        }
    }
    panic!("nginx is not installed: run ./scripts/test, which installs it (apt-get install nginx)")
}

/// The node that answered, from a line of the `upstream` log format. After a retry
/// (`proxy_next_upstream`), `$upstream_addr` lists every node tried, the one that answered last.
fn upstream_port(line: &str) -> u16 {
    line.split_once("upstream=")
        .and_then(|(_, rest)| rest.split(" rt=").next())
        .and_then(|addrs| addrs.rsplit(", ").next())
        .and_then(|addr| addr.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no upstream in access log line: {line}"))
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
