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
    /// Copies delivered to the sender's own socket: expected when messages are sent through
    /// the server API (`--api-key`), which tells every socket of the sender; counted apart.
    pub sender_copies: AtomicU64,
    senders_hear: bool,
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
            sender_copies: AtomicU64::new(0),
            senders_hear: false,
            malformed: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
        }
    }

    /// Messages are sent through the server API: their senders' sockets receive them too.
    pub fn senders_hear(mut self) -> Self {
        self.senders_hear = true;
        self
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

    /// The slot of a message already sent: an ack or a delivery naming any other is forged or
    /// garbled.
    fn claimed(&self, seq: usize) -> Option<&Slot> {
        self.slots().get(seq)
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

    /// The ack `43<seq>[{"message":{...}}]` or `43<seq>[{"error":"reason"}]`, as `seq` and the
    /// payload after it.
    pub fn on_ack(&self, seq: Option<usize>, payload: &str) {
        let Some(slot) = seq.and_then(|seq| self.claimed(seq)) else {
            self.malformed.fetch_add(1, Relaxed);
            return;
        };
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
        let Some(slot) = self.claimed(seq) else {
            self.malformed.fetch_add(1, Relaxed);
            return true;
        };
        if slot.to.load(Relaxed) != me {
            if self.senders_hear && slot.from.load(Relaxed) == me {
                self.sender_copies.fetch_add(1, Relaxed);
                return true;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: u32 = 0xabc;

    /// A tracker that has sent one message, seq 0, from user 1 to user 2.
    fn one_sent() -> (Tracker, String) {
        let tracker = Tracker::new(4, RUN);
        let (seq, content) = tracker.claim(1, 2, "").unwrap();
        assert_eq!(seq, 0);
        (tracker, content)
    }

    fn delivery(content: &str) -> String {
        format!(r#"42["private message",{{"content":"{content}","from":"a","to":"b"}}]"#)
    }

    #[test]
    fn content_carries_the_run_marker_the_sequence_and_the_send_time() {
        let tracker = Tracker::new(4, RUN);
        tracker.claim(0, 1, "").unwrap();
        let (seq, content) = tracker.claim(1, 2, "xx").unwrap();
        assert_eq!(seq, 1);
        let rest = content.strip_prefix("lg00000abc:1:").unwrap();
        let (sent_us, pad) = rest.split_once(':').unwrap();
        assert_eq!(pad, "xx");
        assert_eq!(
            sent_us.parse::<u64>().unwrap(),
            tracker.slots()[1].sent_us.load(Relaxed)
        );
        assert_eq!(tracker.seq_of(&content), Some(1));
    }

    #[test]
    fn claims_stop_at_the_capacity() {
        let tracker = Tracker::new(1, RUN);
        assert!(tracker.claim(0, 1, "").is_some());
        assert!(tracker.claim(0, 1, "").is_none());
        assert_eq!(tracker.sent(), 1);
    }

    #[test]
    fn content_tags_parse_into_sequence_and_send_time() {
        assert_eq!(parse_content("12:345:"), Some((12, 345)));
        assert_eq!(parse_content("12:345:pad:with:colons"), Some((12, 345)));
        assert_eq!(parse_content("12:345"), Some((12, 345)));
    }

    #[test]
    fn malformed_content_tags_are_refused() {
        for rest in [
            "",
            ":",
            "12",
            "12:",
            "x:1:",
            "1:x:",
            "-1:2:",
            "1:-2:",
            " 1:2:",
            "1.5:2:",
            "99999999999999999999999:1:",
        ] {
            assert_eq!(parse_content(rest), None, "{rest:?}");
        }
    }

    #[test]
    fn contents_of_another_run_or_garbled_are_not_ours() {
        let tracker = Tracker::new(4, RUN);
        assert_eq!(tracker.seq_of("lg00000abd:0:1:"), None);
        assert_eq!(tracker.seq_of("lg00000abc:zero:1:"), None);
        assert_eq!(tracker.seq_of("hello"), None);
        assert_eq!(tracker.seq_of("xlg00000abc:0:1:"), None);
    }

    #[test]
    fn a_message_ack_counts_as_acknowledged() {
        let (tracker, _) = one_sent();
        tracker.on_ack(Some(0), r#"[{"message":{"id":"m","content":"c"}}]"#);
        assert_eq!(tracker.acks.load(Relaxed), 1);
        assert_eq!(tracker.acked_ok.load(Relaxed), 1);
        assert_eq!(tracker.slots()[0].ack.load(Relaxed), ACK_OK);
        assert_eq!(tracker.ack_latency_us.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_error_ack_is_counted_by_its_reason() {
        let (tracker, _) = one_sent();
        tracker.on_ack(Some(0), r#"[{"error":"server busy"}]"#);
        assert_eq!(tracker.acked_ok.load(Relaxed), 0);
        assert_eq!(tracker.slots()[0].ack.load(Relaxed), ACK_ERROR);
        assert_eq!(tracker.errors.lock().unwrap()["server busy"], 1);
    }

    #[test]
    fn odd_ack_payloads_are_error_acks_with_a_reason_saying_why() {
        for (payload, reason) in [
            ("[{\"error\":{\"code\":1}}]", r#"{"code":1}"#),
            ("[{}]", "ack without message or error"),
            ("[]", "ack without message or error"),
            ("[{\"mess", "unparsable ack"),
            ("", "unparsable ack"),
        ] {
            assert_eq!(ack_outcome(payload), Err(reason.to_owned()), "{payload:?}");
        }
        assert_eq!(ack_outcome(r#"[{"message":null}]"#), Ok(()));
    }

    #[test]
    fn an_ack_answered_twice_is_malformed_and_counted_once() {
        let (tracker, _) = one_sent();
        tracker.on_ack(Some(0), r#"[{"message":{}}]"#);
        tracker.on_ack(Some(0), r#"[{"error":"late"}]"#);
        assert_eq!(tracker.acks.load(Relaxed), 1);
        assert_eq!(tracker.malformed.load(Relaxed), 1);
        assert!(tracker.errors.lock().unwrap().is_empty());
    }

    #[test]
    fn an_ack_naming_no_sent_message_is_malformed() {
        let (tracker, _) = one_sent();
        tracker.on_ack(None, r#"[{"message":{}}]"#);
        tracker.on_ack(Some(1), r#"[{"message":{}}]"#); // within capacity, never sent
        tracker.on_ack(Some(99), r#"[{"message":{}}]"#); // beyond capacity
        assert_eq!(tracker.malformed.load(Relaxed), 3);
        assert_eq!(tracker.acks.load(Relaxed), 0);
    }

    #[test]
    fn a_delivery_to_the_recipient_is_counted_with_its_latency() {
        let (tracker, content) = one_sent();
        assert!(tracker.on_delivery(2, &delivery(&content)));
        assert_eq!(tracker.delivered_unique.load(Relaxed), 1);
        assert_eq!(tracker.latency_us.lock().unwrap().len(), 1);
        assert_eq!(tracker.slots()[0].deliveries.load(Relaxed), 1);
    }

    #[test]
    fn a_second_delivery_is_a_duplicate() {
        let (tracker, content) = one_sent();
        tracker.on_delivery(2, &delivery(&content));
        tracker.on_delivery(2, &delivery(&content));
        assert_eq!(tracker.delivered_unique.load(Relaxed), 1);
        assert_eq!(tracker.duplicates.load(Relaxed), 1);
    }

    #[test]
    fn a_delivery_to_another_user_is_misrouted() {
        let (tracker, content) = one_sent();
        assert!(tracker.on_delivery(3, &delivery(&content)));
        assert_eq!(tracker.misrouted.load(Relaxed), 1);
        assert_eq!(tracker.delivered_unique.load(Relaxed), 0);
    }

    #[test]
    fn the_senders_copy_is_misrouted_unless_sent_through_the_api() {
        let (tracker, content) = one_sent();
        tracker.on_delivery(1, &delivery(&content));
        assert_eq!(tracker.misrouted.load(Relaxed), 1);
        let tracker = Tracker::new(4, RUN).senders_hear();
        let (_, content) = tracker.claim(1, 2, "").unwrap();
        tracker.on_delivery(1, &delivery(&content));
        tracker.on_delivery(3, &delivery(&content));
        assert_eq!(tracker.sender_copies.load(Relaxed), 1);
        assert_eq!(tracker.misrouted.load(Relaxed), 1);
        assert_eq!(tracker.delivered_unique.load(Relaxed), 0);
    }

    #[test]
    fn messages_of_other_runs_and_broadcasts_naming_our_users_are_not_ours() {
        let (tracker, _) = one_sent();
        assert!(!tracker.on_delivery(2, &delivery("lg00000abd:0:1:")));
        // Our usernames are `lg<run>-<i>`: a broadcast about one must not look like a message.
        let joined = r#"42["user connected",{"userID":"u","username":"lg00000abc-7"}]"#;
        assert!(!tracker.on_delivery(2, joined));
        assert_eq!(tracker.malformed.load(Relaxed), 0);
        assert_eq!(tracker.delivered_unique.load(Relaxed), 0);
    }

    #[test]
    fn a_garbled_or_unsent_tag_of_ours_is_malformed() {
        let (tracker, _) = one_sent();
        for content in [
            "lg00000abc:",
            "lg00000abc:x:1:",
            "lg00000abc:0",
            "lg00000abc:1:5:",
        ] {
            assert!(tracker.on_delivery(2, &delivery(content)), "{content}");
        }
        assert_eq!(tracker.malformed.load(Relaxed), 4);
        assert_eq!(tracker.delivered_unique.load(Relaxed), 0);
    }
}
