//! Typed settings: every flag can also come from an environment variable, so the same binary
//! runs from a shell, systemd or docker-compose without a config file.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;

use crate::{
    socket::rate_limit::RateLimit,
    store::{RedisTarget, redis::redact},
};

#[derive(Clone, Parser)]
#[command(name = "privmsg-server", version, about)]
pub struct Settings {
    /// Address to bind. 0.0.0.0 so that containers and load balancers can reach the node.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// TCP port; 0 picks a free one (tests), the chosen port is logged.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Redis holding sessions, messages and the adapter's pub/sub.
    /// `redis://[:password@]host:port[/db]` or `rediss://` for TLS.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Redis Cluster seed nodes, comma-separated (`host:port` or `redis://host:port`). When set,
    /// the server runs on the cluster (sharded pub/sub, per-slot scripts) and ignores REDIS_URL.
    #[arg(long, env = "REDIS_CLUSTER_NODES", value_delimiter = ',')]
    pub redis_cluster_nodes: Vec<String>,

    /// Browser origins allowed by CORS, comma-separated ("*" allows any). Same-origin
    /// requests (the client served by this server) never need an entry.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080"
    )]
    pub cors_origins: Vec<String>,

    /// How long a session lives after its last save, in seconds (Node server: 24 h).
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 86_400)]
    pub session_ttl_secs: u64,

    /// How long a user's history lives after its last message, in seconds (Node server: 24 h).
    #[arg(long, env = "MESSAGE_TTL_SECS", default_value_t = 86_400)]
    pub message_ttl_secs: u64,

    /// Largest accepted message `content`, in UTF-8 bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Largest Engine.IO payload a client may send, in bytes (a long-polling POST or a
    /// WebSocket message). Above it the engine drops that client's connection, so it sits well
    /// above MAX_MESSAGE_BYTES: an over-long message gets its `{ error }` ack instead. 1 MB, as
    /// engine.io's `maxHttpBufferSize` in the Node server.
    #[arg(long, env = "MAX_PAYLOAD_BYTES", default_value_t = 1_000_000)]
    pub max_payload_bytes: u64,

    /// Packets queued for one socket that is not reading fast enough; past it, further live
    /// deliveries to that socket are dropped (they stay in the history), so a stalled reader
    /// costs bounded memory.
    #[arg(long, env = "MAX_SOCKET_BUFFER", default_value_t = 128)]
    pub max_socket_buffer: usize,

    /// Messages kept per user history (oldest trimmed first), so one chatty user cannot grow
    /// Redis and every `users` payload without bound.
    #[arg(long, env = "HISTORY_CAP", default_value_t = 1000)]
    pub history_cap: usize,

    /// Sustained `private message` events per second allowed to one socket (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 20.0)]
    pub rate_limit_per_sec: f64,

    /// Events one socket may send at once above the sustained rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 40.0)]
    pub rate_limit_burst: f64,

    /// Messages one node may be storing and forwarding at once. Past it, new messages are
    /// refused at once ("server busy") instead of queueing into seconds of latency.
    #[arg(long, env = "MAX_PENDING_MESSAGES", default_value_t = 2048)]
    pub max_pending_messages: usize,

    /// Sockets (tabs, devices) one user may have open at once, across all nodes.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 10)]
    pub max_sockets_per_user: usize,

    /// Folder of the built web client, served at `/` when it exists.
    #[arg(long, env = "CLIENT_DIR", default_value = "client/dist")]
    pub client_dir: PathBuf,

    /// A node that has not refreshed its liveness for this long is taken for dead, and the
    /// survivors mark its users offline. It refreshes every third of it.
    #[arg(long, env = "NODE_TTL_SECS", default_value_t = 15)]
    pub node_ttl_secs: u64,

    /// Threads running the node's tasks; 0: one per CPU. With 1, everything runs on one
    /// thread (no cross-thread wake-ups: the least CPU per message); run one node per core
    /// that way, or one node with a thread per core.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    /// Redis connections each node opens for commands (pub/sub has its own). Each one is
    /// multiplexed: shared by every concurrent request, pipelined on the wire, so a few carry
    /// the whole load and fewer connections batch more commands per system call.
    #[arg(long, env = "REDIS_POOL_SIZE", default_value_t = 4)]
    pub redis_pool_size: usize,
}

impl Settings {
    /// Settings with every default, as a test or an embedding program starts from.
    pub fn defaults() -> Self {
        Self::parse_from(["privmsg-server"])
    }

    /// Where the data and the pub/sub live.
    pub fn redis_target(&self) -> RedisTarget {
        let nodes: Vec<String> = self
            .redis_cluster_nodes
            .iter()
            .map(|node| node.trim())
            .filter(|node| !node.is_empty())
            .map(|node| match node.contains("://") {
                true => node.to_owned(),
                false => format!("redis://{node}"),
            })
            .collect();
        if nodes.is_empty() {
            RedisTarget::Standalone(self.redis_url.clone())
        } else {
            RedisTarget::Cluster(nodes)
        }
    }

    /// The async runtime the node runs on, as WORKER_THREADS asks.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self.worker_threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            0 => tokio::runtime::Builder::new_multi_thread(),
            n => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
        };
        builder.enable_all().build()
    }

    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.rate_limit_per_sec,
            burst: self.rate_limit_burst.max(1.0),
        }
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_secs(self.node_ttl_secs.max(1))
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    pub fn message_ttl(&self) -> Duration {
        Duration::from_secs(self.message_ttl_secs)
    }
}

/// Every setting, with the Redis URLs' credentials redacted: settings get logged, passwords
/// must not.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.redis_cluster_nodes.iter().map(|n| redact(n)).collect();
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("redis_url", &redact(&self.redis_url))
            .field("redis_cluster_nodes", &nodes)
            .field("cors_origins", &self.cors_origins)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("message_ttl_secs", &self.message_ttl_secs)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_socket_buffer", &self.max_socket_buffer)
            .field("history_cap", &self.history_cap)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("max_pending_messages", &self.max_pending_messages)
            .field("max_sockets_per_user", &self.max_sockets_per_user)
            .field("client_dir", &self.client_dir)
            .field("node_ttl_secs", &self.node_ttl_secs)
            .field("worker_threads", &self.worker_threads)
            .field("redis_pool_size", &self.redis_pool_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_redis_password() {
        let settings = Settings::parse_from([
            "privmsg-server",
            "--redis-url",
            "rediss://:hunter2@10.0.0.1:6380",
            "--redis-cluster-nodes",
            "redis://:hunter3@10.0.0.2:7000",
        ]);
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert!(shown.contains("10.0.0.1:6380"), "{shown}");
    }
}
