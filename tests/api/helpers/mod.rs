//! Test helpers: a real Redis per test, real server instances on port 0, real Socket.IO clients.

mod api;
mod client;
mod cluster;
mod identity;
mod nginx;
mod process;
mod receiver;
mod redis_server;
mod replica;
mod sentinel;
mod stored;
mod traces;
mod wait;

pub use api::{API_KEY, ApiClient, api_settings, in_path, spawn_api_app};
pub use client::{Connected, TestClient};
pub use cluster::TestCluster;
pub use identity::{TEST_JWT_SECRET, auth_for_mode, jwt_mode};
pub use nginx::TestNginx;
pub use process::NodeProcess;
pub use receiver::{Received, Receiver};
pub use redis_server::TestRedis;
pub use replica::{TestReplica, connected_replicas};
pub use sentinel::{SentinelSet, unreachable_sentinels};
pub use stored::conversation_key;
pub use traces::Trace;
pub use wait::{eventually, eventually_within};

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use privmsg::{
    settings::{MetricsAddr, Settings},
    startup::Application,
    store::RedisTarget,
};
use tokio::{sync::oneshot, task::JoinHandle};

/// How long a test waits for an event or a condition it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// Anything a Socket.IO client can connect to: a node, in process or not, or a proxy.
pub trait Server {
    fn url(&self) -> String;
}

/// A node whose `/metrics` a test reads: on its own listener (METRICS_ADDR), not on `url()`.
pub trait Scraped {
    fn metrics_url(&self) -> String;
}

/// One running server node.
pub struct TestApp {
    pub port: u16,
    /// Where its `/metrics` is served (METRICS_ADDR, port 0 in tests).
    pub metrics_port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server for TestApp {
    fn url(&self) -> String {
        TestApp::url(self)
    }
}

impl Scraped for TestApp {
    fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }
}

impl TestApp {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Graceful shutdown, as on SIGTERM; returns once the node has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(15), &mut self.task).await;
        result
            .expect("node did not drain in time")
            .expect("node task panicked")
            .expect("node returned an error");
    }
}

/// Settings for a test node on a free port against `redis`: the server's defaults, never its
/// environment variables (`Settings::defaults()` reads them), so that a developer's shell
/// (`REDIS_CLUSTER_NODES`, `RATE_LIMIT_PER_SEC`...) changes neither where a test writes nor
/// what it tests.
pub fn test_settings(redis: &TestRedis) -> Settings {
    let defaults = Settings::command()
        .mut_args(|arg| arg.env(None))
        .get_matches_from(["privmsg-server"]);
    let mut settings = Settings::from_arg_matches(&defaults).expect("the defaults parse");
    settings.host = [127, 0, 0, 1].into();
    settings.port = 0;
    match &redis.target {
        RedisTarget::Standalone(url) => settings.redis_url = url.clone(),
        RedisTarget::Cluster(nodes) => settings.redis_cluster_nodes = nodes.clone(),
        RedisTarget::Sentinel(set) => {
            settings.redis_sentinels = set.sentinels.clone();
            settings.redis_sentinel_master = set.master.clone();
        }
    }
    settings.client_dir = "/nonexistent".into();
    // Each node its own metrics port, so that tests running side by side never collide.
    settings.metrics_addr = Some(MetricsAddr(Some(([127, 0, 0, 1], 0).into())));
    // Every test client comes from 127.0.0.1: only the tests of the limit itself keep it.
    settings.new_sessions_per_minute = 1_000_000;
    settings.new_sessions_burst = 1_000_000;
    // The index's upkeep at once, as before the setting: the tests of search and of data the
    // Node server wrote find its users indexed without waiting a minute.
    settings.index_upkeep_delay_secs = 0;
    if jwt_mode() {
        settings.auth = privmsg::settings::AuthMode::Jwt;
        settings.jwt_secret = Some(TEST_JWT_SECRET.into());
    }
    settings
}

/// Server logs go through the test harness's capture, so they show only for failing tests.
fn init_test_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub async fn spawn_app(redis: &TestRedis) -> TestApp {
    spawn_app_with(test_settings(redis)).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    init_test_logging();
    let app = Application::build(settings).await.expect("server builds");
    let port = app.port();
    let metrics_port = app.metrics_port().expect("test nodes serve metrics");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        port,
        metrics_port,
        stop: Some(stop),
        task,
    }
}

/// Runs each named `async fn(TestRedis)` twice: on a standalone Redis and on a Redis Cluster.
#[macro_export]
macro_rules! on_standalone_and_cluster {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_standalone_redis() {
                super::$name($crate::helpers::TestRedis::start().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_a_redis_cluster() {
                super::$name($crate::helpers::TestRedis::start_cluster().await).await
            }
        }
    )*};
}

/// How many messages `server` received on per-user channels (its `/metrics`), echoes included.
pub async fn user_channel_messages(server: &impl Scraped) -> u64 {
    metric(
        server,
        "privmsg_cross_node_messages_received_total{channel=\"user\"}",
    )
    .await
}

/// The value of one sample of `server`'s `/metrics` (`name` with its labels, as exposed, e.g.
/// `privmsg_live_deliveries_dropped_total{reason="socket_buffer_full"}`); 0 when absent.
pub async fn metric(server: &impl Scraped, name: &str) -> u64 {
    let text = reqwest::get(server.metrics_url())
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |value| value.parse().expect("a whole number"))
}
