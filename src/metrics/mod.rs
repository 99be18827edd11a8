//! Prometheus metrics, one registry per node (so tests running several nodes in one process
//! read each node's own figures), served as text at `/metrics`.

use std::{sync::Arc, time::Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use socketioxide::{BroadcastError, SocketError};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Sockets connected to this node.
    pub sockets: IntGauge,
    /// Distinct users with at least one socket on this node.
    pub users_online: IntGauge,
    pub messages_accepted: IntCounter,
    /// Refused messages, by the reason sent back in the error ack.
    pub messages_refused: IntCounterVec,
    /// Accepted messages published to the nodes holding a socket of their recipient or sender.
    pub messages_delivered: IntCounter,
    /// Redis command latency, by command (EVALSHA for the scripts).
    pub redis_seconds: HistogramVec,
    /// Broadcasts the adapter failed to publish, by event.
    pub adapter_errors: IntCounterVec,
    /// Live deliveries dropped (the recipient finds them in its history), by where: a full
    /// pub/sub stream, a full socket buffer.
    pub live_dropped: IntCounterVec,
    /// Messages this node received from Redis pub/sub, by kind of channel: `user` (routed to
    /// a user held here), `presence` (`user connected` / `user disconnected` from any node),
    /// `adapter` (room broadcasts, requests between nodes) or `emitter` (a backend's Socket.IO
    /// emitter).
    pub cross_node_received: IntCounterVec,
    /// 1 while this node's pub/sub connection answers and holds every subscription the node
    /// needs (it receives cross-node traffic), 0 otherwise; `/readyz` says 503 while it is 0.
    pub pubsub_connected: IntGauge,
    /// Repairs of the pub/sub connection, by how: `resubscribe` (channels Redis had dropped
    /// subscribed again) or `reconnect` (a new cluster connection, on a fresh topology).
    pub pubsub_repairs: IntCounterVec,
    /// `search users` requests, by result: `served`, or the refusal's reason.
    pub searches: IntCounterVec,
    /// `fetch messages` requests, by result: `served`, or the refusal's reason.
    pub pages: IntCounterVec,
    /// `messages read` events, by result: `marked`, or the refusal's reason.
    pub reads: IntCounterVec,
    /// Usernames removed from the search index because their session had expired.
    pub users_pruned: IntCounter,
    /// Users in this node's in-memory directory (`all` scope).
    pub directory_users: IntGauge,
    /// Listings of Redis reconciled into the directory, by result (`ok`, `error`).
    pub directory_resyncs: IntCounterVec,
    /// Directory entries a resync changed: presence events this node missed, healed.
    pub directory_corrections: IntCounter,
    /// Socket.IO handshakes refused, by reason: `invalid_username`, `too_many_sockets` (per
    /// user), `too_many_new_sessions` (per address), `server_full` (per node), `unavailable`.
    pub handshakes_refused: IntCounterVec,
    /// Client addresses the new-session limiter remembers (bounded: forgotten once their
    /// quota has refilled).
    pub new_session_addresses: IntGauge,
    /// Bytes of event payloads this node deserialized, by event: a rate-limited event is
    /// refused before its payload is parsed, so a flood adds nothing here.
    pub payload_bytes_decoded: IntCounterVec,
    /// Sessions of dead nodes a sweep could not clean (tried again by the next sweep; the
    /// node stays listed until every one is clean).
    pub sweep_failures: IntCounter,
    /// `typing` events, by result: `forwarded`, or the refusal's reason (`rate_limited`...).
    pub typing: IntCounterVec,
    /// Moderation (`block user`, `unblock user`, `delete message`, `edit message`), by action:
    /// `block`, `unblock`, `message_blocked` (a message kept for its sender alone),
    /// `typing_blocked`, `delete`, `edit`, or `<event>_refused_<reason>` (`block_refused_too_many`:
    /// a block list at its limit).
    pub moderation: IntCounterVec,
    /// Refused messages removed again from the histories they had reached (Redis Cluster,
    /// where a message's two histories sit on different masters), by when: `at_once`,
    /// `later` (after the cluster served again); or left there: `given_up` (refused for 10
    /// minutes), `no_room` (the node already held its most pending removals), `stopped` (the
    /// node stopped before the cluster took them).
    pub messages_undone: IntCounterVec,
    /// Refused messages whose removal is still pending (Redis Cluster): tried again while the
    /// cluster refuses it; at most 4,096 per node (past it, `no_room`).
    pub message_undos_pending: IntGauge,
    /// Presence entries this node's refresh corrected, by change: `dropped` (no socket of it
    /// held one: a leave whose write failed) or `restored` (a live socket's was missing).
    pub presence_repairs: IntCounterVec,
    /// Messages per call of the standalone store (`store_messages.lua`).
    pub store_batch_messages: Histogram,
    /// What the Socket.IO emitter published, by result: `emitted`, `disconnected`, or the
    /// refusal's reason (`malformed`, `too_large`, `other_namespace`, `reserved_event`,
    /// `unsupported`).
    pub emitter_packets: IntCounterVec,
    /// 1 while the emitter's classic pub/sub connection holds every channel it wants.
    pub emitter_pubsub_connected: IntGauge,
    /// Repairs of the emitter's pub/sub connection, by how (`resubscribe`, `reconnect`).
    pub emitter_pubsub_repairs: IntCounterVec,
    adapter_log: Arc<Throttle>,
    sweep_log: Arc<Throttle>,
    undo_log: Arc<Throttle>,
}

mod throttle;

pub use throttle::LOG_EVERY;
use throttle::Throttle;

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("privmsg".into()), None).unwrap_or_else(|_| Registry::new());
        let metrics = Self {
            sockets: IntGauge::new("sockets_connected", "Sockets connected to this node")
                .expect("valid metric"),
            users_online: IntGauge::new("users_online", "Users with a socket on this node")
                .expect("valid metric"),
            messages_accepted: IntCounter::new("messages_accepted_total", "Messages stored")
                .expect("valid metric"),
            messages_refused: IntCounterVec::new(
                Opts::new("messages_refused_total", "Messages refused, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            messages_delivered: IntCounter::new(
                "messages_delivered_total",
                "Stored messages forwarded to their recipients' and sender's sockets",
            )
            .expect("valid metric"),
            redis_seconds: HistogramVec::new(
                HistogramOpts::new("redis_command_seconds", "Redis latency by command").buckets(
                    vec![
                        0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0,
                    ],
                ),
                &["command"],
            )
            .expect("valid metric"),
            adapter_errors: IntCounterVec::new(
                Opts::new(
                    "adapter_errors_total",
                    "Broadcasts the adapter failed to publish",
                ),
                &["event"],
            )
            .expect("valid metric"),
            live_dropped: IntCounterVec::new(
                Opts::new(
                    "live_deliveries_dropped_total",
                    "Live deliveries dropped (still in the recipient's history), by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            cross_node_received: IntCounterVec::new(
                Opts::new(
                    "cross_node_messages_received_total",
                    "Messages received from other nodes over Redis pub/sub, by channel kind",
                ),
                &["channel"],
            )
            .expect("valid metric"),
            pubsub_connected: IntGauge::new(
                "pubsub_connected",
                "1 while the pub/sub connection holds every subscription this node needs",
            )
            .expect("valid metric"),
            pubsub_repairs: IntCounterVec::new(
                Opts::new(
                    "pubsub_repairs_total",
                    "Repairs of the pub/sub connection, by how",
                ),
                &["how"],
            )
            .expect("valid metric"),
            searches: IntCounterVec::new(
                Opts::new("user_searches_total", "`search users` requests, by result"),
                &["result"],
            )
            .expect("valid metric"),
            pages: IntCounterVec::new(
                Opts::new("fetch_messages_total", "`fetch messages` requests, by result"),
                &["result"],
            )
            .expect("valid metric"),
            reads: IntCounterVec::new(
                Opts::new("messages_read_total", "`messages read` events, by result"),
                &["result"],
            )
            .expect("valid metric"),
            users_pruned: IntCounter::new(
                "users_pruned_total",
                "Expired users removed from the username index",
            )
            .expect("valid metric"),
            directory_users: IntGauge::new(
                "directory_users",
                "Users in this node's in-memory directory",
            )
            .expect("valid metric"),
            directory_resyncs: IntCounterVec::new(
                Opts::new(
                    "directory_resyncs_total",
                    "Listings of Redis reconciled into the directory, by result",
                ),
                &["result"],
            )
            .expect("valid metric"),
            directory_corrections: IntCounter::new(
                "directory_corrections_total",
                "Directory entries a resync changed (missed presence events healed)",
            )
            .expect("valid metric"),
            handshakes_refused: IntCounterVec::new(
                Opts::new(
                    "handshakes_refused_total",
                    "Socket.IO handshakes refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            new_session_addresses: IntGauge::new(
                "new_session_limiter_addresses",
                "Client addresses the new-session limiter remembers",
            )
            .expect("valid metric"),
            payload_bytes_decoded: IntCounterVec::new(
                Opts::new(
                    "payload_bytes_decoded_total",
                    "Bytes of event payloads deserialized, by event",
                ),
                &["event"],
            )
            .expect("valid metric"),
            sweep_failures: IntCounter::new(
                "sweep_failures_total",
                "Sessions of dead nodes a sweep could not clean (retried by the next sweep)",
            )
            .expect("valid metric"),
            typing: IntCounterVec::new(
                Opts::new("typing_total", "typing events, by result"),
                &["result"],
            )
            .expect("valid metric"),
            moderation: IntCounterVec::new(
                Opts::new("moderation_total", "Moderation actions and refusals, by action"),
                &["action"],
            )
            .expect("valid metric"),
            messages_undone: IntCounterVec::new(
                Opts::new(
                    "messages_undone_total",
                    "Refused messages removed again from the histories they had reached",
                ),
                &["when"],
            )
            .expect("valid metric"),
            message_undos_pending: IntGauge::new(
                "message_undos_pending",
                "Refused messages whose removal from the histories they reached is pending",
            )
            .expect("valid metric"),
            presence_repairs: IntCounterVec::new(
                Opts::new(
                    "presence_repairs_total",
                    "Presence entries the node's refresh corrected, by change (dropped, restored)",
                ),
                &["change"],
            )
            .expect("valid metric"),
            store_batch_messages: Histogram::with_opts(
                HistogramOpts::new(
                    "store_batch_messages",
                    "Messages stored by one script call (standalone Redis), or started together (Redis Cluster)",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
            )
            .expect("valid metric"),
            emitter_packets: IntCounterVec::new(
                Opts::new(
                    "emitter_packets_total",
                    "Packets of the Socket.IO emitter, by result (emitted, disconnected, or why refused)",
                ),
                &["result"],
            )
            .expect("valid metric"),
            emitter_pubsub_connected: IntGauge::new(
                "emitter_pubsub_connected",
                "1 while the emitter's pub/sub connection holds every channel it wants",
            )
            .expect("valid metric"),
            emitter_pubsub_repairs: IntCounterVec::new(
                Opts::new(
                    "emitter_pubsub_repairs_total",
                    "Repairs of the emitter's pub/sub connection, by how",
                ),
                &["how"],
            )
            .expect("valid metric"),
            adapter_log: Arc::default(),
            sweep_log: Arc::default(),
            undo_log: Arc::default(),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 31] = [
            Box::new(self.sockets.clone()),
            Box::new(self.users_online.clone()),
            Box::new(self.messages_accepted.clone()),
            Box::new(self.messages_refused.clone()),
            Box::new(self.messages_delivered.clone()),
            Box::new(self.redis_seconds.clone()),
            Box::new(self.adapter_errors.clone()),
            Box::new(self.live_dropped.clone()),
            Box::new(self.cross_node_received.clone()),
            Box::new(self.pubsub_connected.clone()),
            Box::new(self.pubsub_repairs.clone()),
            Box::new(self.searches.clone()),
            Box::new(self.pages.clone()),
            Box::new(self.reads.clone()),
            Box::new(self.users_pruned.clone()),
            Box::new(self.directory_users.clone()),
            Box::new(self.directory_resyncs.clone()),
            Box::new(self.directory_corrections.clone()),
            Box::new(self.handshakes_refused.clone()),
            Box::new(self.new_session_addresses.clone()),
            Box::new(self.payload_bytes_decoded.clone()),
            Box::new(self.sweep_failures.clone()),
            Box::new(self.typing.clone()),
            Box::new(self.moderation.clone()),
            Box::new(self.messages_undone.clone()),
            Box::new(self.message_undos_pending.clone()),
            Box::new(self.presence_repairs.clone()),
            Box::new(self.store_batch_messages.clone()),
            Box::new(self.emitter_packets.clone()),
            Box::new(self.emitter_pubsub_connected.clone()),
            Box::new(self.emitter_pubsub_repairs.clone()),
        ];
        for collector in collectors {
            if let Err(err) = self.registry.register(collector) {
                tracing::error!(%err, "cannot register a metric");
            }
        }
    }

    /// Registers a metric a module keeps for itself (the server API's), so that `/metrics`
    /// shows it without this struct holding every module's counters.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(err) = self.registry.register(collector) {
            tracing::error!(%err, "cannot register a metric");
        }
    }

    /// Counts one moderation action (see [`Metrics::moderation`]).
    pub fn moderation(&self, action: &str) {
        self.moderation.with_label_values(&[action]).inc();
    }

    /// Accounts for what an emit of `event` could not do, in one place whoever emits: sockets
    /// it could not reach (closing at that instant, or not reading) are expected under churn
    /// and only counted in `live_deliveries_dropped_total`; a failure to reach the other nodes
    /// is counted in `adapter_errors_total` and logged, at most once per [`LOG_EVERY`] with
    /// the number of failures since the last line, so that a mass disconnect or an outage
    /// cannot flood the log.
    pub fn emitted(&self, event: &str, result: Result<(), BroadcastError>) {
        match result {
            Ok(()) => {}
            Err(BroadcastError::Socket(errors)) => {
                for error in errors {
                    self.live_dropped(match error {
                        SocketError::InternalChannelFull => "socket_buffer_full",
                        SocketError::Closed => "socket_closed",
                    });
                }
            }
            Err(err) => self.adapter_error(event, &err),
        }
    }

    /// Records a failure to reach the other nodes with `event` (publish, subscribe): counted,
    /// and logged at most once per [`LOG_EVERY`].
    pub fn adapter_error(&self, event: &str, err: &dyn std::fmt::Debug) {
        self.adapter_errors.with_label_values(&[event]).inc();
        if let Some(suppressed) = self.adapter_log.ready() {
            tracing::warn!(event, error = ?err, suppressed, "cannot reach the other nodes");
        }
    }

    /// Records sessions of the dead `node` a sweep could not clean: counted, and logged at
    /// most once per [`LOG_EVERY`] (a key that stays broken fails every sweep).
    pub fn sweep_failed(&self, node: &str, failed: usize, err: &dyn std::fmt::Debug) {
        self.sweep_failures.inc_by(failed as u64);
        if let Some(suppressed) = self.sweep_log.ready() {
            tracing::warn!(node, failed, error = ?err, suppressed,
                "cannot clean every session of a dead node; the next sweep tries again");
        }
    }

    /// Records a refused message left in the `histories` it reached because the node already
    /// holds its most pending removals: counted (`no_room`), and logged at most once per
    /// [`LOG_EVERY`] (it happens to every refusal of a long outage once the bound is reached).
    pub fn undo_without_room(&self, histories: usize) {
        self.messages_undone.with_label_values(&["no_room"]).inc();
        if let Some(suppressed) = self.undo_log.ready() {
            tracing::error!(
                histories,
                suppressed,
                "no room to remove a refused message again: it stays in what it reached"
            );
        }
    }

    /// Counts a live delivery dropped for `reason` (a label of `live_deliveries_dropped_total`).
    pub fn live_dropped(&self, reason: &str) {
        self.live_dropped.with_label_values(&[reason]).inc();
    }

    /// Times one Redis command (or pipeline) under `command`.
    pub fn time_redis<'a, T: 'a>(
        &self,
        command: String,
        call: impl Future<Output = T> + Send + 'a,
    ) -> impl Future<Output = T> + Send + 'a {
        let histogram = self.redis_seconds.with_label_values(&[command.as_str()]);
        async move {
            let start = Instant::now();
            let result = call.await;
            histogram.observe(start.elapsed().as_secs_f64());
            result
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
