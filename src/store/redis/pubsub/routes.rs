//! Where what Redis pushes goes: messages to the stream of their channel; signs of trouble (a
//! connection lost, a channel Redis dropped on its own) to the health check, at once.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use prometheus::IntCounter;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc};

use super::ChannelMessage;
use crate::{metrics::Metrics, store::redis::keys};

/// Shared by every connection the node opens (a cluster connection may be replaced).
pub(super) struct Routes {
    /// The channels this node wants, and where the messages of each go.
    handlers: RwLock<HashMap<String, mpsc::Sender<ChannelMessage>>>,
    counters: Counters,
    /// The generation of the current connection. Pushes from a replaced connection, still open
    /// for a moment, are ignored: with both subscribed, a message would arrive twice.
    generation: AtomicU64,
    /// Rings when a connection reports trouble, so that the health check runs at once.
    pub(super) alarm: Notify,
    /// Set with the alarm, cleared by the health check once the connection is whole again:
    /// whatever was published meanwhile was missed, even if the client resubscribed on its own
    /// before any check noticed (see [`super::PubSub::resumed`]).
    pub(super) interrupted: AtomicBool,
}

/// The counters of every received message, resolved once (not per message).
struct Counters {
    user: IntCounter,
    presence: IntCounter,
    adapter: IntCounter,
    dropped: IntCounter,
}

impl Routes {
    pub(super) fn new(metrics: &Metrics) -> Self {
        Self {
            handlers: RwLock::default(),
            counters: Counters {
                user: metrics.cross_node_received.with_label_values(&["user"]),
                presence: metrics.cross_node_received.with_label_values(&["presence"]),
                adapter: metrics.cross_node_received.with_label_values(&["adapter"]),
                dropped: metrics
                    .live_dropped
                    .with_label_values(&["pubsub_stream_full"]),
            },
            generation: AtomicU64::new(0),
            alarm: Notify::new(),
            interrupted: AtomicBool::new(false),
        }
    }

    /// For the emitter's connection: whatever arrives there counts as `emitter`.
    pub(super) fn emitter(metrics: &Metrics) -> Self {
        let mut routes = Self::new(metrics);
        let emitter = metrics.cross_node_received.with_label_values(&["emitter"]);
        routes.counters.user = emitter.clone();
        routes.counters.presence = emitter.clone();
        routes.counters.adapter = emitter;
        routes
    }

    pub(super) fn want(&self, channels: &[String], to: &mpsc::Sender<ChannelMessage>) {
        if let Ok(mut handlers) = self.handlers.write() {
            for channel in channels {
                handlers.insert(channel.clone(), to.clone());
            }
        }
    }

    pub(super) fn unwant(&self, channels: &[String]) {
        if let Ok(mut handlers) = self.handlers.write() {
            for channel in channels {
                handlers.remove(channel);
            }
        }
    }

    /// Every channel this node wants.
    pub(super) fn wanted(&self) -> Vec<String> {
        self.handlers
            .read()
            .map(|handlers| handlers.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn is_wanted(&self, channel: &[u8]) -> bool {
        let Ok(channel) = std::str::from_utf8(channel) else {
            return false;
        };
        self.handlers
            .read()
            .is_ok_and(|handlers| handlers.contains_key(channel))
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// From now on, only pushes of the connection of `generation` count.
    pub(super) fn switch_to(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
    }

    /// Handles a push of the connection of `generation`.
    pub(super) fn on_push(&self, generation: u64, push: PushInfo) {
        if generation != self.generation() {
            return;
        }
        match push.kind {
            PushKind::Message | PushKind::SMessage => self.deliver(push.data),
            PushKind::Disconnection => self.raise_alarm(),
            // Redis dropped a channel this node still wants (it unsubscribes a channel only
            // after forgetting it): a sharded channel's slot moved to another master.
            PushKind::Unsubscribe | PushKind::SUnsubscribe => {
                if let Some(Value::BulkString(channel)) = push.data.first()
                    && self.is_wanted(channel)
                {
                    self.raise_alarm();
                }
            }
            _ => {}
        }
    }

    fn raise_alarm(&self) {
        self.interrupted.store(true, Ordering::Release);
        self.alarm.notify_one();
    }

    /// Hands a message to its channel's stream. A full stream drops the message (counted)
    /// rather than blocking the connection every channel shares: live delivery is at most
    /// once, and the message is in the recipient's history.
    fn deliver(&self, data: Vec<Value>) {
        let mut data = data.into_iter();
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
        let Ok(channel) = String::from_utf8(channel) else {
            return;
        };
        if channel.starts_with(keys::USER_CHANNEL_PREFIX) {
            self.counters.user.inc();
        } else if channel == keys::PRESENCE_CHANNEL {
            self.counters.presence.inc();
        } else {
            self.counters.adapter.inc();
        }
        let Ok(handlers) = self.handlers.read() else {
            return;
        };
        if let Some(to) = handlers.get(&channel)
            && to.try_send((channel, payload)).is_err()
        {
            self.counters.dropped.inc();
        }
    }
}
