//! Webhooks (docs/protocol.md, "Webhooks"): `message.created` and `message.unread`, POSTed signed to
//! WEBHOOK_URL, at least once, whatever node dies.
//!
//! - A stored message's deliveries are queued in its own writes ([`Webhooks::jobs_for`], the
//!   one place that decides them; the message log writes them: `store_messages.lua` on a
//!   standalone Redis, a write beside the histories on a cluster, all or none with them).
//! - The queue is one sorted set in Redis ([`queue`]: why not a Stream), so a node that stops
//!   or dies leaves its work to the others.
//! - Every node runs a [`worker`]: it leases what is due, sends it ([`send`]), and settles it.
//! - Never in messaging's way: a message adds only its jobs to writes it makes anyway; the
//!   sending is bounded per node (WEBHOOK_CONCURRENCY) and the queue (WEBHOOK_MAX_PENDING).

mod config;
mod job;
pub(crate) mod metrics;
mod queue;
mod send;
mod worker;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::value::RawValue;

pub use config::WebhookConfig;
pub use job::Enqueued;
pub use send::signature;

use crate::{
    domain::Message,
    metrics::Metrics,
    store::{RedisPool, UserIndex},
};

/// A node's webhooks: off (WEBHOOK_URL unset), or on with their queue and worker state.
#[derive(Clone, Default)]
pub struct Webhooks(Option<Arc<On>>);

struct On {
    config: WebhookConfig,
    queue: queue::Queue,
    client: reqwest::Client,
    metrics: metrics::WebhookMetrics,
    /// The recipient's username, looked up when a delivery is sent.
    users: UserIndex,
    /// The queue's size as this node's worker last read it: the bound new jobs are held to.
    pending: AtomicU64,
}

impl Webhooks {
    /// Webhooks as `config` says (`None`: off), their metrics registered in `metrics`.
    pub fn new(
        config: Option<WebhookConfig>,
        pool: &RedisPool,
        users: UserIndex,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let Some(config) = config else {
            return Ok(Self(None));
        };
        // The host only: a URL's path or query may carry a token of the receiver's.
        let host = config.url.host_str().unwrap_or_default();
        tracing::info!(host, "webhooks on");
        Ok(Self(Some(Arc::new(On {
            client: send::client()?,
            queue: queue::Queue::new(pool.clone()),
            metrics: metrics::WebhookMetrics::new(metrics),
            config,
            users,
            pending: AtomicU64::new(0),
        }))))
    }

    /// The deliveries to queue with `message` (its JSON `json`), as they go into its writes:
    /// `message.created` due now, `message.unread` after WEBHOOK_UNREAD_AFTER_SECS (never for a
    /// message to oneself), none when webhooks are off, and none, counted `dropped`, while the
    /// queue holds WEBHOOK_MAX_PENDING (as last read: it may pass it by a poll's worth).
    pub fn jobs_for(&self, message: &Message, json: &RawValue) -> Vec<Enqueued> {
        let Some(on) = self.0.as_deref() else {
            return Vec::new();
        };
        let config = &on.config;
        let unread = config.unread.then_some(config.unread_after);
        if on.pending.load(Ordering::Relaxed) >= config.max_pending as u64 {
            if config.created {
                on.metrics.counted(config::CREATED, "dropped");
            }
            if unread.is_some() && message.from != message.to {
                on.metrics.counted(config::UNREAD, "dropped");
            }
            return Vec::new();
        }
        let at = message.timestamp.unwrap_or_else(job::now_ms);
        job::jobs_for(config.created, unread, json, &message.from, &message.to, at)
    }

    /// Starts this node's worker; `None` when webhooks are off.
    pub fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.0.as_ref()?;
        Some(tokio::spawn(worker::run(self.clone())))
    }
}
