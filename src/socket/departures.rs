//! Departures that could not be saved (Redis down or failing when the socket left): kept
//! here and saved again at every heartbeat until Redis takes them, so that a tab closed during
//! an outage does not leave its user online for as long as this node lives (the node is alive,
//! so neither the sweep nor the audit would ever remove that field).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use prometheus::IntGauge;

use crate::{domain::Session, store::SocketTag};

/// The most departures kept; past it the oldest is dropped (its field then stays until this
/// node's next presence audit, `audit`, finds no socket owns it).
const MAX_PENDING: usize = 100_000;

/// One socket's departure, to save again.
pub struct Pending {
    pub session: Arc<Session>,
    pub tag: SocketTag,
}

pub struct Departures {
    /// Oldest first. A queue, so that dropping the oldest at the cap costs nothing: every
    /// failed departure of an outage comes through here, under the lock, on a runtime worker.
    pending: Mutex<VecDeque<Pending>>,
    /// Departures waiting to be saved again (`privmsg_departures_pending`).
    gauge: IntGauge,
}

impl Departures {
    pub fn new(gauge: IntGauge) -> Self {
        Self {
            pending: Mutex::default(),
            gauge,
        }
    }

    /// Keeps a departure that could not be saved.
    pub fn keep(&self, departure: Pending) {
        if let Ok(mut pending) = self.pending.lock() {
            if pending.len() >= MAX_PENDING {
                pending.pop_front();
            }
            pending.push_back(departure);
            self.gauge.set(pending.len() as i64);
        }
    }

    /// Every departure kept so far, oldest first, to try again (what fails again is kept
    /// again).
    pub fn take(&self) -> Vec<Pending> {
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        self.gauge.set(0);
        std::mem::take(&mut *pending).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    fn departure(name: &str) -> Pending {
        let username = Username::parse(name).expect("a valid username");
        Pending {
            session: Arc::new(Session::create(username)),
            tag: SocketTag::new("node", name),
        }
    }

    #[test]
    fn past_the_cap_the_oldest_departures_are_dropped_and_the_count_stays_at_the_cap() {
        let gauge = IntGauge::new("departures_pending", "test").expect("a gauge");
        let departures = Departures::new(gauge.clone());
        for i in 0..MAX_PENDING + 2 {
            departures.keep(departure(&format!("user{i}")));
        }

        assert_eq!(gauge.get(), MAX_PENDING as i64);
        let kept = departures.take();
        assert_eq!(kept.len(), MAX_PENDING);
        let name = |p: &Pending| p.session.username.to_string();
        assert_eq!(
            name(&kept[0]),
            "user2",
            "the two oldest are the ones dropped"
        );
        assert_eq!(
            name(&kept[MAX_PENDING - 1]),
            format!("user{}", MAX_PENDING + 1),
            "the newest is kept, last"
        );
        assert_eq!(gauge.get(), 0, "all taken");
    }
}
