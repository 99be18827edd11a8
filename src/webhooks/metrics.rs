//! The webhooks' figures, registered in the node's registry only when webhooks are on.

use prometheus::{IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct WebhookMetrics {
    /// Outcomes by event type and result: `delivered` (2xx), `retry` (non-2xx, no answer in
    /// 5 s, or unreachable: tried again later), `expired` (failed for 24 h), `read` (a
    /// `message.unread` whose message was read in time), `dropped` (not queued: the queue was
    /// full), `gone` (the recipient was erased), `blocked` (the recipient blocks the sender),
    /// `deleted` (the message is no longer in the recipient's history: deleted, erased with
    /// its sender, or trimmed away), `unseen` (not in it yet, a few seconds after it was sent:
    /// a cluster's append may still be on its way; looked for again 1 s later), `invalid` (an
    /// entry that is not a job), `redis_error`.
    pub deliveries: IntCounterVec,
    /// Deliveries waiting in Redis, of every node (as last read by this one).
    pub pending: IntGauge,
    /// How long the most overdue delivery has been due, in seconds (0: none overdue).
    pub oldest_pending: IntGauge,
    /// Deliveries this node is sending now (at most WEBHOOK_CONCURRENCY).
    pub in_flight: IntGauge,
}

impl WebhookMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let this = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_deliveries_total",
                    "Webhook deliveries by event type and result",
                ),
                &["type", "result"],
            )
            .expect("valid metric"),
            pending: IntGauge::new(
                "webhook_pending",
                "Webhook deliveries waiting in Redis, all nodes together",
            )
            .expect("valid metric"),
            oldest_pending: IntGauge::new(
                "webhook_oldest_pending_seconds",
                "How long the most overdue webhook delivery has been due",
            )
            .expect("valid metric"),
            in_flight: IntGauge::new(
                "webhook_in_flight",
                "Webhook deliveries this node is sending now",
            )
            .expect("valid metric"),
        };
        metrics.register(Box::new(this.deliveries.clone()));
        metrics.register(Box::new(this.pending.clone()));
        metrics.register(Box::new(this.oldest_pending.clone()));
        metrics.register(Box::new(this.in_flight.clone()));
        this
    }

    pub fn counted(&self, kind: &str, result: &str) {
        self.deliveries.with_label_values(&[kind, result]).inc();
    }
}
