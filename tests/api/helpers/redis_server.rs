//! A private `redis-server` on a free port in a temporary folder, or the one `REDIS_URL` names.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct TestRedis {
    pub url: String,
    process: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl TestRedis {
    pub async fn start() -> Self {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Self {
                url,
                process: None,
                _dir: None,
            };
        }
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let process = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (see README)");
            let redis = Self {
                url: format!("redis://127.0.0.1:{port}"),
                process: Some(process),
                _dir: Some(dir),
            };
            if redis.wait_ready().await {
                return redis;
            }
        }
        panic!("could not start redis-server");
    }

    async fn wait_ready(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
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

    /// A direct connection, for arranging data and checking what the server wrote.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
