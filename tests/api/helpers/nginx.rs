//! nginx in front of test nodes, configured by the deployment's own template
//! (`deploy/nginx.conf.template`, rendered by `deploy/render-nginx`), so the tests exercise
//! exactly what `scripts/run-nodes` and docker-compose run.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use rust_socketio::TransportType;
use serde_json::Value;

use super::{Connected, TestApp, TestClient, WAIT, redis_server::free_port};

pub struct TestNginx {
    pub port: u16,
    process: Child,
    dir: tempfile::TempDir,
}

impl TestNginx {
    /// Starts nginx on a free port in front of `nodes` and waits until a request through it
    /// reaches a node.
    pub async fn start(nodes: &[&TestApp]) -> Self {
        let bin = nginx_bin();
        let upstreams: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        // The free port can be taken between the probe and nginx's bind: try a few.
        for _ in 0..5 {
            let mut nginx = Self::spawn(bin, free_port(), &upstreams);
            if nginx.wait_ready().await {
                return nginx;
            }
        }
        panic!("nginx did not start; see its error.log above");
    }

    fn spawn(bin: &str, port: u16, upstreams: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Run as root, nginx's workers switch to `nobody`: let them into their temp folders.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        let prefix = dir.path().to_str().expect("utf-8 temp path");
        let rendered = Command::new(repo_file("deploy/render-nginx"))
            .arg(port.to_string())
            .args([prefix, prefix])
            .args(upstreams)
            .output()
            .expect("deploy/render-nginx runs");
        assert!(
            rendered.status.success(),
            "deploy/render-nginx: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, rendered.stdout).expect("write nginx.conf");
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

    async fn wait_ready(&mut self) -> bool {
        let url = format!("{}/healthz", self.url());
        for _ in 0..100 {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return true;
            }
            if let Ok(Some(_)) = self.process.try_wait() {
                break; // e.g. its port was taken meanwhile
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("nginx error.log:\n{}", self.log("error.log"));
        false
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
        // nginx writes the line after it has answered: poll for it.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let log = self.log("access.log");
            if let Some(line) = log.lines().find(|line| line.contains(&probe)) {
                return upstream_port(line);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "probe {probe} not in access.log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for TestNginx {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.process.try_wait() {
            return; // already reaped: its pid may belong to someone else now
        }
        // SIGKILL to the master only would leave its workers serving the port: ask the master
        // to stop them all (fast shutdown), then reap it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The nginx binary. Debian puts it in /usr/sbin, which is not on a normal user's PATH.
/// The tests need a real one (scripts/test installs it): never skip silently.
fn nginx_bin() -> &'static str {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .find(|bin| {
            Command::new(bin)
                .arg("-v")
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .expect(
            "nginx is not installed: run ./scripts/test, which installs it (apt-get install nginx)",
        )
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
