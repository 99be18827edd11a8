//! Typed settings: every flag can also come from an environment variable, so the same binary
//! runs from a shell, systemd or docker-compose without a config file.

mod values;

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    path::PathBuf,
    time::Duration,
};

use clap::{Parser, ValueEnum};
use values::{at_least, burst, not_empty, rate, sentinel_address};

use crate::{
    api::ApiKeys,
    client_addr::TrustedProxies,
    socket::rate_limit::RateLimit,
    store::{
        RedisTarget,
        redis::{SentinelTarget, redact},
    },
};

/// The worker threads' stack in a debug build (see [`Settings::runtime`]); the tests' own
/// runtimes get the same through `RUST_MIN_STACK` in `.cargo/config.toml`.
const DEBUG_STACK_BYTES: usize = 16 << 20;

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

    /// Redis Sentinel addresses, comma-separated `host:port`. When set, the nodes find the
    /// master through the sentinels and follow a failover without a restart; REDIS_URL is
    /// ignored. The master's password is REDIS_PASSWORD, the sentinels' is
    /// REDIS_SENTINEL_PASSWORD. Cannot be combined with REDIS_CLUSTER_NODES.
    #[arg(long, env = "REDIS_SENTINELS", value_delimiter = ',', value_parser = sentinel_address)]
    pub redis_sentinels: Vec<String>,

    /// The name the sentinels monitor the master under (used with REDIS_SENTINELS).
    #[arg(long, env = "REDIS_SENTINEL_MASTER", default_value = "mymaster", value_parser = not_empty)]
    pub redis_sentinel_master: String,

    /// The ACL user the nodes log in to the master as, with REDIS_PASSWORD (used with
    /// REDIS_SENTINELS; unset: the `default` user). Elsewhere it goes in REDIS_URL.
    #[arg(long, env = "REDIS_USERNAME")]
    pub redis_username: Option<String>,

    /// The master's password (`requirepass`, or the REDIS_USERNAME user's), used with
    /// REDIS_SENTINELS; elsewhere it goes in REDIS_URL. Never logged.
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// The sentinels' own password (their `requirepass`), if they have one. Never logged.
    #[arg(long, env = "REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_password: Option<String>,

    /// Browser origins allowed by CORS, comma-separated ("*" allows any). Same-origin
    /// requests (the client served by this server) never need an entry.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080"
    )]
    pub cors_origins: Vec<String>,

    /// How long a session lives after its last save, in seconds, 1 or more (Node server: 24 h;
    /// 0 would delete the session on its first save).
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl_secs: u64,

    /// How long a user's history lives after its last message, in seconds, 1 or more (Node
    /// server: 24 h; 0 would delete an acknowledged message at once).
    #[arg(long, env = "MESSAGE_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub message_ttl_secs: u64,

    /// Largest accepted message `content`, in UTF-8 bytes: 1 or more, below MAX_PAYLOAD_BYTES.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4096, value_parser = at_least::<1>)]
    pub max_message_bytes: usize,

    /// Largest Engine.IO payload a client may send, in bytes (a long-polling POST or a
    /// WebSocket message). Above it the engine drops that client's connection, so it sits well
    /// above MAX_MESSAGE_BYTES: an over-long message gets its `{ error }` ack instead. 1 MB, as
    /// engine.io's `maxHttpBufferSize` in the Node server. 1024 or more.
    #[arg(long, env = "MAX_PAYLOAD_BYTES", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_payload_bytes: u64,

    /// Packets queued for one socket that is not reading fast enough; past it, further live
    /// deliveries to that socket are dropped (they stay in the history), so a stalled reader
    /// costs bounded memory. 1 or more.
    #[arg(long, env = "MAX_SOCKET_BUFFER", default_value_t = 128, value_parser = at_least::<1>)]
    pub max_socket_buffer: usize,

    /// Messages kept per user history (oldest trimmed first), so one chatty user cannot grow
    /// Redis and every `users` payload without bound. 1 or more.
    #[arg(long, env = "HISTORY_CAP", default_value_t = 1000, value_parser = at_least::<1>)]
    pub history_cap: usize,

    /// Sustained `private message` events per second allowed to one socket: 0 (no limit) or
    /// more.
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 20.0, value_parser = rate)]
    pub rate_limit_per_sec: f64,

    /// Events one socket may send at once above the sustained rate: 1 or more.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 40.0, value_parser = burst)]
    pub rate_limit_burst: f64,

    /// Messages one node may be storing and forwarding at once. Past it, new messages are
    /// refused at once ("server busy") instead of queueing into seconds of latency. 1 or more.
    #[arg(long, env = "MAX_PENDING_MESSAGES", default_value_t = 2048, value_parser = at_least::<1>)]
    pub max_pending_messages: usize,

    /// How long, in microseconds, a batch of messages may wait for more
    /// once its first one is there, while messages keep coming (a lone message, or a sender
    /// that waits for each acknowledgement, is not held): fewer, larger script calls and
    /// fewer wake-ups on every node, for at most that much latency (Kafka's `linger.ms`
    /// defaults to 5 ms for the same trade). 0 sends at once (messages that arrive while the
    /// previous call is on its way still share the next). On a Redis Cluster, the messages
    /// gathered so start their writes together. 0 to 10000.
    #[arg(long, env = "STORE_BATCH_DELAY_US", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub store_batch_delay_us: u64,

    /// How many replicas of the Redis master (of each master its writes touch, on a cluster)
    /// must hold a message before it is forwarded and
    /// acknowledged `{ message }` (Redis `WAIT`, once per batch of messages): 0 to 16. With 1
    /// or more, a message acknowledged a moment before the master dies is still on the replica
    /// that takes over; one the replicas do not confirm within REDIS_WAIT_TIMEOUT_MS is undone
    /// and refused ("storage unavailable"), and while the master counts fewer replicas than
    /// this, every message is refused so and `/readyz` says why. Costs a round trip to the
    /// replicas per batch (see docs/replicas.md). 0 (the default): acknowledged once the
    /// master holds it, as before. Sessions, contacts and read marks are not waited for. On
    /// a Redis Cluster, every master a message's writes touched waits for its own replicas.
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub redis_wait_replicas: u32,

    /// With REDIS_WAIT_REPLICAS, how long, in milliseconds, a batch of messages waits for the
    /// replicas to confirm before it is undone and refused: 1 to 60000. Once a master is seen
    /// short of replicas (an unconfirmed batch, or its count checked every second), messages
    /// are refused at once until it has them again.
    #[arg(long, env = "REDIS_WAIT_TIMEOUT_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_wait_timeout_ms: u64,

    /// Sockets (tabs, devices) one user may have open at once, across all nodes: 1 or more.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 10, value_parser = at_least::<1>)]
    pub max_sockets_per_user: usize,

    /// Socket.IO connections this node holds at once, 1 to 10000000. Past it a connection is
    /// refused (`connect_error` "server full") rather than taking the node out of memory or
    /// file descriptors; the client may retry later, or on another node.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_connections: u32,

    /// New sessions (a handshake with a username rather than a stored sessionID) one client
    /// address may create per minute, 1 to 1000000. Each is a stored user that every later
    /// `users` lists for SESSION_TTL_SECS; restoring a session is never limited. An IPv6
    /// client counts by its /64, which one host usually holds whole.
    #[arg(long, env = "NEW_SESSIONS_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub new_sessions_per_minute: u32,

    /// New sessions one address may create at once above that rate, 1 to 1000000: room for
    /// a few people behind one NAT arriving together.
    #[arg(long, env = "NEW_SESSIONS_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub new_sessions_burst: u32,

    /// The reverse proxies in front of this node (nginx), comma-separated IPs or CIDR blocks
    /// (`127.0.0.1,10.0.0.0/8`); empty by default. Only a request whose TCP peer is one of them
    /// has its X-Forwarded-For (the client's address: the right-most entry that is not a
    /// trusted proxy), X-Forwarded-Host and X-Forwarded-Proto believed: anyone else could write
    /// them. Empty: the client's address is the TCP peer's.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", value_parser = values::proxies)]
    pub trusted_proxies: TrustedProxies,

    /// Where `/metrics` is served: `host:port` of a listener of its own, never the client
    /// port (the figures tell an attacker how the node is doing), or `off`. Not set: loopback,
    /// on PORT + 6091 (9091 for PORT 3000, 9092 for 3001...; port 0 for PORT 0), so that nodes
    /// on one host given only their own PORTs never share it; a PORT above 59444 then refuses
    /// to start. In a container, 0.0.0.0:9091 on a network the scraper alone reaches.
    #[arg(long, env = "METRICS_ADDR", value_parser = values::metrics_addr)]
    pub metrics_addr: Option<MetricsAddr>,

    /// Folder of the built web client, served at `/` when it exists.
    #[arg(long, env = "CLIENT_DIR", default_value = "client/dist")]
    pub client_dir: PathBuf,

    /// A node that has not refreshed its liveness for this long is taken for dead, and the
    /// survivors mark its users offline. It refreshes every third of it, and checks its own
    /// presence entries against its sockets once per this interval. 3 to 3600.
    #[arg(long, env = "NODE_TTL_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub node_ttl_secs: u64,

    /// How often each node reads every session again to correct its in-memory directory of
    /// users, in seconds, 1 to 3600: a presence event a node missed (its pub/sub connection
    /// was down, the announcing node died first) shows wrong there for at most this long.
    /// Each resync costs one SCAN + HMGET of every session.
    #[arg(long, env = "DIRECTORY_RESYNC_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub directory_resync_secs: u64,

    /// How long after it starts a node first offers to run the user index's upkeep (the walk
    /// of every session that indexes the Node server's users and prunes expired usernames;
    /// one node per hour runs it), in seconds, 0 to 3600. A restart is when every client
    /// reconnects at once: the walk, pages of reads and writes on the node's shared Redis
    /// connection, waits until that is over rather than queue the joins' reads behind it.
    #[arg(long, env = "INDEX_UPKEEP_DELAY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub index_upkeep_delay_secs: u64,

    /// Threads running the node's tasks; 0: one per CPU. With 1, everything runs on one
    /// thread (no cross-thread wake-ups: the least CPU per message); run one node per core
    /// that way, or one node with a thread per core.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    /// Redis connections each node opens for commands (pub/sub has its own). Each one is
    /// multiplexed: shared by every concurrent request, pipelined on the wire, so a few carry
    /// the whole load and fewer connections batch more commands per system call. 1 or more.
    #[arg(long, env = "REDIS_POOL_SIZE", default_value_t = 4, value_parser = at_least::<1>)]
    pub redis_pool_size: usize,

    /// Who a user sees and hears about: `all` (the Part IV behaviour: every stored user, every
    /// arrival and departure) or `contacts` (itself plus the users it has exchanged a message
    /// with; anyone else is found with `search users`), so that a connect costs the user's
    /// contacts, not the whole user base.
    #[arg(long, env = "USERS_SCOPE", value_enum, default_value_t = UsersScope::All)]
    pub users_scope: UsersScope,

    /// How many of the newest messages of each conversation `users` carries at connect:
    /// `all` (the reference's behaviour) or a number, 0 or more; a client pages back with
    /// `fetch messages`. With a number, messages the Node server wrote (no id) carry their
    /// `legacy:<n>` address as their id, so that a client can page back from them.
    #[arg(long, env = "HISTORY_ON_CONNECT", default_value = "all", value_parser = values::history_on_connect)]
    pub history_on_connect: HistoryOnConnect,

    /// Who a client says it is: `session` (the Part IV handshake: a stored sessionID, or any
    /// username) or `jwt` (a token signed by the deployment: `auth: { token }`, see
    /// JWT_SECRET / JWT_PUBLIC_KEY_FILE).
    #[arg(long, env = "AUTH", value_enum, default_value_t = AuthMode::Session)]
    pub auth: AuthMode,

    /// The HS256 key tokens are signed with (AUTH=jwt), 32 bytes or more (RFC 7518: a key as
    /// long as the hash). Never logged.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// A PEM public key (RSA for RS256, EC P-256 for ES256) tokens are verified with
    /// (AUTH=jwt), instead of JWT_SECRET.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Clock skew allowed on a token's `exp` (and `nbf`), in seconds, 0 to 3600.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub jwt_leeway_secs: u64,

    /// When set, a token must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, a token must carry this `aud` (among others); a token with an `aud` is
    /// refused when this is not set.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The server API's bearer key, or several comma-separated (a rotation), each at least 32
    /// characters; unset, there is no `/api/`. Never logged.
    // Read through [`Settings::api_keys`]: kept raw here because clap prints a refused value
    // in its error, and a key must never be printed.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Where webhooks are POSTed (http or https); unset, none are sent. Needs WEBHOOK_SECRET.
    #[arg(long, env = "WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// The key of each webhook's HMAC-SHA256 signature, at least 32 characters. Never logged.
    // Read through [`Settings::webhooks`]: kept raw, as API_KEY, so that no error ever prints it.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// The webhooks sent, comma-separated: `message.created`, `message.unread`.
    #[arg(long, env = "WEBHOOK_EVENTS", default_value = "message.unread")]
    pub webhook_events: String,

    /// How long after it was stored an unread message sends `message.unread`, in seconds,
    /// 1 to 86400.
    #[arg(long, env = "WEBHOOK_UNREAD_AFTER_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub webhook_unread_after_secs: u64,

    /// Webhook deliveries one node has in flight at once, 1 or more.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = 32, value_parser = at_least::<1>)]
    pub webhook_concurrency: usize,

    /// Deliveries waiting in Redis (all nodes together) past which a new message queues
    /// none (counted as `dropped`): a dead endpoint must not fill Redis. 1 or more.
    #[arg(long, env = "WEBHOOK_MAX_PENDING", default_value_t = 1_000_000, value_parser = at_least::<1>)]
    pub webhook_max_pending: usize,

    /// How long after a message's `timestamp` its sender may still `edit message` it, in
    /// seconds, 0 to 31536000; 0 turns editing off (`{ error: "editing is off" }`).
    #[arg(long, env = "EDIT_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub edit_window_secs: u64,

    /// Users one user's block list may hold (`block user`), 1 to 100000: past it a block is
    /// refused with a reason, so one account cannot grow a set without bound.
    #[arg(long, env = "MAX_BLOCKED_USERS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_blocked_users: u64,
}

/// `HISTORY_ON_CONNECT`: every message (`None`), or the newest this many per conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOnConnect(pub Option<usize>);

/// How a handshake establishes who the client is (docs/protocol.md, "Handshake").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// A stored sessionID, or a new session for any username.
    Session,
    /// A JWT signed with the configured key names the user.
    Jwt,
}

/// Where `/metrics` listens; `None`: nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

/// What METRICS_ADDR's default adds to PORT: the default PORT, 3000, keeps 9091, the fixed
/// default this replaces (clear of 9100, node_exporter's on most Prometheus hosts).
pub const METRICS_PORT_OFFSET: u16 = 6091;

/// The scope of the user directory (docs/protocol.md, "Directory scope").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsersScope {
    /// `users` lists every stored user; presence goes to every socket.
    All,
    /// `users` lists the user and its contacts; presence goes to its contacts only.
    Contacts,
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
        if !self.redis_sentinels.is_empty() {
            RedisTarget::Sentinel(SentinelTarget {
                sentinels: self.redis_sentinels.clone(),
                master: self.redis_sentinel_master.clone(),
                username: self.redis_username.clone(),
                password: self.redis_password.clone(),
                sentinel_password: self.redis_sentinel_password.clone(),
            })
        } else if nodes.is_empty() {
            RedisTarget::Standalone(self.redis_url.clone())
        } else {
            RedisTarget::Cluster(nodes)
        }
    }

    /// Where `/metrics` is served (`None`: `off`): METRICS_ADDR, else loopback on PORT +
    /// [`METRICS_PORT_OFFSET`] (port 0 with PORT 0); an error naming METRICS_ADDR when that
    /// is past 65535.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        if let Some(MetricsAddr(addr)) = self.metrics_addr {
            return Ok(addr);
        }
        let port = match self.port {
            0 => Some(0),
            port => port.checked_add(METRICS_PORT_OFFSET),
        };
        let port = port.ok_or_else(|| {
            format!(
                "--metrics-addr (METRICS_ADDR) is not set, and its default, PORT + \
                 {METRICS_PORT_OFFSET} ({} + {METRICS_PORT_OFFSET}), is past 65535: set \
                 METRICS_ADDR (host:port, or off)",
                self.port
            )
        })?;
        Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))))
    }

    /// The server API's keys; `None` when API_KEY is unset (no API). Refuses a short key,
    /// naming API_KEY and never the key.
    pub fn api_keys(&self) -> Result<Option<ApiKeys>, String> {
        self.api_key.as_deref().map(ApiKeys::parse).transpose()
    }

    /// The webhooks' settings; `None` when WEBHOOK_URL is unset (no webhooks). Refuses a bad
    /// value naming its setting, and never prints the secret.
    pub fn webhooks(&self) -> Result<Option<crate::webhooks::WebhookConfig>, String> {
        crate::webhooks::WebhookConfig::from_settings(self)
    }

    /// Checks what no single flag can: refuses, naming the settings, rather than clamping.
    pub fn validate(&self) -> Result<(), String> {
        self.metrics_listen_addr()?;
        self.api_keys()?;
        self.webhooks()?;
        if !self.redis_sentinels.is_empty() && !self.redis_cluster_nodes.is_empty() {
            return Err(
                "--redis-sentinels (REDIS_SENTINELS) and --redis-cluster-nodes \
                 (REDIS_CLUSTER_NODES) cannot both be set: Sentinel finds one master, a cluster \
                 has its own failover"
                    .to_owned(),
            );
        }
        if self.max_message_bytes as u64 >= self.max_payload_bytes {
            return Err(format!(
                "--max-message-bytes (MAX_MESSAGE_BYTES, {}) must be below --max-payload-bytes \
                 (MAX_PAYLOAD_BYTES, {}): a message at the limit must still fit in a payload, \
                 so that it gets its error ack instead of a dropped connection",
                self.max_message_bytes, self.max_payload_bytes
            ));
        }
        Ok(())
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
        // A debug build's async frames are many times a release build's: the connect
        // handler's chain in the `contacts` scope takes ~2 MiB of stack there (measured with
        // gdb), tokio's default. Virtual memory only; release builds keep the default.
        if cfg!(debug_assertions) {
            builder.thread_stack_size(DEBUG_STACK_BYTES);
        }
        builder.enable_all().build()
    }

    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.rate_limit_per_sec,
            burst: self.rate_limit_burst,
        }
    }

    /// How many sessions one client address may create: per minute, with a burst.
    pub fn new_sessions_quota(&self) -> governor::Quota {
        let per_minute = NonZeroU32::new(self.new_sessions_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.new_sessions_burst).unwrap_or(NonZeroU32::MIN);
        governor::Quota::per_minute(per_minute).allow_burst(burst)
    }

    /// REDIS_WAIT_REPLICAS with its timeout; `None` when it is 0.
    pub fn redis_wait(&self) -> Option<crate::store::replicas::WaitFor> {
        let timeout = Duration::from_millis(self.redis_wait_timeout_ms);
        crate::store::replicas::WaitFor::of(self.redis_wait_replicas, timeout)
    }

    pub fn store_batch_delay(&self) -> Duration {
        Duration::from_micros(self.store_batch_delay_us)
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_secs(self.node_ttl_secs)
    }

    pub fn directory_resync(&self) -> Duration {
        Duration::from_secs(self.directory_resync_secs)
    }

    pub fn index_upkeep_delay(&self) -> Duration {
        Duration::from_secs(self.index_upkeep_delay_secs)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    pub fn message_ttl(&self) -> Duration {
        Duration::from_secs(self.message_ttl_secs)
    }

    /// A contact set lives as long as the longer of a session and a history.
    pub fn contacts_ttl(&self) -> Duration {
        self.session_ttl().max(self.message_ttl())
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
            .field("redis_sentinels", &self.redis_sentinels)
            .field("redis_sentinel_master", &self.redis_sentinel_master)
            .field("redis_username", &self.redis_username)
            .field(
                "redis_password",
                &self.redis_password.as_ref().map(|_| "***"),
            )
            .field(
                "redis_sentinel_password",
                &self.redis_sentinel_password.as_ref().map(|_| "***"),
            )
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
            .field("store_batch_delay_us", &self.store_batch_delay_us)
            .field("redis_wait_replicas", &self.redis_wait_replicas)
            .field("redis_wait_timeout_ms", &self.redis_wait_timeout_ms)
            .field("max_sockets_per_user", &self.max_sockets_per_user)
            .field("client_dir", &self.client_dir)
            .field("node_ttl_secs", &self.node_ttl_secs)
            .field("directory_resync_secs", &self.directory_resync_secs)
            .field("index_upkeep_delay_secs", &self.index_upkeep_delay_secs)
            .field("worker_threads", &self.worker_threads)
            .field("redis_pool_size", &self.redis_pool_size)
            .field("users_scope", &self.users_scope)
            .field("max_connections", &self.max_connections)
            .field("new_sessions_per_minute", &self.new_sessions_per_minute)
            .field("new_sessions_burst", &self.new_sessions_burst)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_addr", &self.metrics_addr)
            .field("history_on_connect", &self.history_on_connect)
            .field("auth", &self.auth)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("jwt_leeway_secs", &self.jwt_leeway_secs)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            // Without its query, which may carry a token of the receiver's.
            .field(
                "webhook_url",
                &self.webhook_url.as_deref().map(|url| url.split('?').next()),
            )
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_events", &self.webhook_events)
            .field("webhook_unread_after_secs", &self.webhook_unread_after_secs)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("webhook_max_pending", &self.webhook_max_pending)
            .field("edit_window_secs", &self.edit_window_secs)
            .field("max_blocked_users", &self.max_blocked_users)
            .finish()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reference;
