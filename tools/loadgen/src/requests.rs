//! Requests answered by an ack that are not tracked `private message`s: `search users`, and the
//! messages that make contacts before a run. Their ack ids start at `REQUEST_BASE`, far above
//! any tracker slot (the tracker's ids are its sequence numbers, at most rate x duration), so a
//! connection task tells the two apart by the id alone and hands a request's answer, with its
//! receipt time, to whoever waits for it.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Instant,
};

use tokio::sync::oneshot;

/// First request ack id: 2^40 fits the i64 ack ids of socketioxide and a JavaScript number.
pub const REQUEST_BASE: usize = 1 << 40;

/// An ack payload (`[{...}]`) and when it arrived.
pub struct Answer {
    pub payload: String,
    pub at: Instant,
}

pub struct Requests {
    next: AtomicUsize,
    pending: Mutex<HashMap<usize, oneshot::Sender<Answer>>>,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            next: AtomicUsize::new(REQUEST_BASE),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl Requests {
    pub fn is_request(id: usize) -> bool {
        id >= REQUEST_BASE
    }

    /// A fresh ack id and the receiver of its answer.
    pub fn open(&self) -> (usize, oneshot::Receiver<Answer>) {
        let id = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, tx);
        }
        (id, rx)
    }

    /// Hands an ack to its waiter; false when no one waits for that id (answered twice, given
    /// up on, or never asked).
    pub fn answer(&self, id: usize, payload: &str) -> bool {
        let at = Instant::now();
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        waiter.is_some_and(|tx| {
            tx.send(Answer {
                payload: payload.to_owned(),
                at,
            })
            .is_ok()
        })
    }

    /// Stops waiting for `id` (timed out): a late answer is then ignored.
    pub fn forget(&self, id: usize) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
    }

    #[cfg(test)]
    pub fn outstanding(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_never_collide_with_tracker_sequence_numbers() {
        let requests = Requests::default();
        let (id, _rx) = requests.open();
        assert!(Requests::is_request(id));
        assert!(!Requests::is_request(0));
        assert!(!Requests::is_request(REQUEST_BASE - 1));
        let (next, _rx2) = requests.open();
        assert_eq!(next, id + 1);
    }

    #[test]
    fn an_answer_reaches_its_waiter_once() {
        let requests = Requests::default();
        let (id, mut rx) = requests.open();
        assert!(requests.answer(id, r#"[{"users":[]}]"#));
        assert_eq!(rx.try_recv().unwrap().payload, r#"[{"users":[]}]"#);
        assert!(!requests.answer(id, "[{}]"), "a second answer is ignored");
        assert_eq!(requests.outstanding(), 0);
    }

    #[test]
    fn a_forgotten_request_ignores_its_late_answer() {
        let requests = Requests::default();
        let (id, _rx) = requests.open();
        requests.forget(id);
        assert!(!requests.answer(id, "[{}]"));
        assert!(!requests.answer(id + 7, "[{}]"), "never asked");
    }
}
