//! Bookkeeping of every `private message` the load generator sends: who sent it to whom, its
//! acknowledgement, and how many times the recipient got it.
//!
//! Slots are preallocated and indexed by a sequence number that doubles as the Socket.IO ack id
//! and is embedded in `content`, so an ack or a delivery finds its slot without a map lookup or
//! a lock: the connection tasks of both worker threads only touch atomics, plus one short mutex
//! per delivery for the latency histogram.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Instant,
};

use hdrhistogram::Histogram;

pub const ACK_PENDING: u8 = 0;
pub const ACK_OK: u8 = 1;
pub const ACK_ERROR: u8 = 2;

#[derive(Default)]
pub struct Slot {
    pub from: AtomicU32,
    pub to: AtomicU32,
    pub sent_us: AtomicU64,
    pub ack: AtomicU8,
    pub deliveries: AtomicU32,
}

pub struct Tracker {
    /// `lg<run>:`, unique per run, so that messages of other runs (in a history, or from a
    /// concurrent load generator) are never mistaken for ours.
    pub marker: String,
    start: Instant,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    pub latency_us: Mutex<Histogram<u64>>,
    pub ack_latency_us: Mutex<Histogram<u64>>,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub acks: AtomicU64,
    pub acked_ok: AtomicU64,
    pub delivered_unique: AtomicU64,
    pub duplicates: AtomicU64,
    /// Delivered to a user that was neither the recipient (a routing bug).
    pub misrouted: AtomicU64,
    /// Acks or deliveries that could not be parsed or named no message of ours.
    pub malformed: AtomicU64,
    pub last_delivery_us: AtomicU64,
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant digits; values above are clamped, never dropped.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

impl Tracker {
    pub fn new(capacity: usize, run: u32) -> Self {
        Self {
            marker: format!("lg{run:08x}:"),
            start: Instant::now(),
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            latency_us: Mutex::new(histogram()),
            ack_latency_us: Mutex::new(histogram()),
            errors: Mutex::new(BTreeMap::new()),
            acks: AtomicU64::new(0),
            acked_ok: AtomicU64::new(0),
            delivered_unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn sent(&self) -> usize {
        self.next.load(Relaxed).min(self.slots.len())
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots[..self.sent()]
    }

    /// Claims the next slot; returns its sequence number and the `content` to send, or None
    /// once the preallocated capacity is used up.
    pub fn claim(&self, from: u32, to: u32, pad: &str) -> Option<(usize, String)> {
        let seq = self.next.fetch_add(1, Relaxed);
        let slot = self.slots.get(seq)?;
        let now = self.now_us();
        slot.from.store(from, Relaxed);
        slot.to.store(to, Relaxed);
        slot.sent_us.store(now, Relaxed);
        Some((seq, format!("{}{seq}:{now}:{pad}", self.marker)))
    }

    /// `43<seq>[{"message":{...}}]` or `43<seq>[{"error":"reason"}]`.
    pub fn on_ack(&self, frame: &str) {
        let body = &frame[2..];
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        let Some(slot) = body[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|seq| self.slots.get(seq))
        else {
            self.malformed.fetch_add(1, Relaxed);
            return;
        };
        let payload = &body[digits..];
        // Fast path for the common case; anything else is parsed properly.
        let outcome = if payload.starts_with("[{\"message\"") {
            Ok(())
        } else {
            ack_outcome(payload)
        };
        let state = if outcome.is_ok() { ACK_OK } else { ACK_ERROR };
        if slot.ack.swap(state, Relaxed) != ACK_PENDING {
            self.malformed.fetch_add(1, Relaxed); // the same ack id answered twice
            return;
        }
        self.acks.fetch_add(1, Relaxed);
        let waited = self.now_us().saturating_sub(slot.sent_us.load(Relaxed));
        if let Ok(mut h) = self.ack_latency_us.lock() {
            h.saturating_record(waited.max(1));
        }
        match outcome {
            Ok(()) => {
                self.acked_ok.fetch_add(1, Relaxed);
            }
            Err(reason) => {
                if let Ok(mut errors) = self.errors.lock() {
                    *errors.entry(reason).or_default() += 1;
                }
            }
        }
    }

    /// A `private message` frame received by user `me`. Returns false when it is not ours.
    pub fn on_delivery(&self, me: u32, frame: &str) -> bool {
        let Some(at) = frame.find(&self.marker) else {
            return false;
        };
        let Some((seq, sent_us)) = parse_content(&frame[at + self.marker.len()..]) else {
            self.malformed.fetch_add(1, Relaxed);
            return true;
        };
        let Some(slot) = self.slots.get(seq) else {
            self.malformed.fetch_add(1, Relaxed);
            return true;
        };
        if slot.to.load(Relaxed) != me {
            self.misrouted.fetch_add(1, Relaxed);
            return true;
        }
        let now = self.now_us();
        if slot.deliveries.fetch_add(1, Relaxed) > 0 {
            self.duplicates.fetch_add(1, Relaxed);
            return true;
        }
        self.delivered_unique.fetch_add(1, Relaxed);
        self.last_delivery_us.fetch_max(now, Relaxed);
        if let Ok(mut h) = self.latency_us.lock() {
            h.saturating_record(now.saturating_sub(sent_us).max(1));
        }
        true
    }

    /// Sequence number of one of our contents (as found in a history), if it is one.
    pub fn seq_of(&self, content: &str) -> Option<usize> {
        let rest = content.strip_prefix(&self.marker)?;
        parse_content(rest).map(|(seq, _)| seq)
    }
}

/// `<seq>:<sent_us>:...`
fn parse_content(rest: &str) -> Option<(usize, u64)> {
    let mut parts = rest.splitn(3, ':');
    let seq = parts.next()?.parse().ok()?;
    let sent_us = parts.next()?.parse().ok()?;
    Some((seq, sent_us))
}

/// The reason of an `{ error }` ack, or Ok for `{ message }`.
fn ack_outcome(payload: &str) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|_| "unparsable ack".to_owned())?;
    let first = &value[0];
    if first.get("message").is_some() {
        return Ok(());
    }
    match first.get("error") {
        Some(serde_json::Value::String(reason)) => Err(reason.clone()),
        Some(other) => Err(other.to_string()),
        None => Err("ack without message or error".to_owned()),
    }
}
