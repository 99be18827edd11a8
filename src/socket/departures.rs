//! Departures that could not be saved (Redis down or failing when the socket left): kept
//! here and saved again at every heartbeat until Redis takes them, so that a tab closed during
//! an outage does not leave its user online for as long as this node lives (the node is alive,
//! so neither the sweep nor the audit would ever remove that field).

use std::sync::{Arc, Mutex};

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
    pending: Mutex<Vec<Pending>>,
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
                pending.remove(0);
            }
            pending.push(departure);
            self.gauge.set(pending.len() as i64);
        }
    }

    /// Every departure kept so far, to try again (what fails again is kept again).
    pub fn take(&self) -> Vec<Pending> {
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        self.gauge.set(0);
        std::mem::take(&mut *pending)
    }
}
