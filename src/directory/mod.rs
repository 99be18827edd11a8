//! The directory of users (`all` scope): every stored user with its username and status, kept
//! in memory by each node so that a connect reads Redis only for what is the user's own.
//!
//! Loaded at start from the sessions (SCAN + HMGET), kept fresh by the presence events every
//! node publishes on `socket.io-presence#` ([`channel`]), and read again from Redis every
//! `DIRECTORY_RESYNC_SECS` and after pub/sub was interrupted ([`resync`]), so that an event a
//! node missed is healed within one interval. `users` is built from it by copying each entry's
//! JSON, encoded once when the entry changed ([`users`]).

mod channel;
mod resync;
mod users;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::Duration,
};

use serde_json::value::RawValue;
use tokio::sync::watch;

pub use channel::{PresenceChannel, spawn_delivery};
pub use resync::spawn as spawn_resync;
pub use users::Users;

use crate::{domain::UserId, metrics::Metrics, socket::payloads::UserEvent, store::UserEntry};

#[derive(Clone)]
pub struct Directory(Arc<Inner>);

struct Inner {
    state: RwLock<State>,
    /// True once the first listing from Redis is in.
    loaded: watch::Sender<bool>,
    metrics: Metrics,
}

#[derive(Default)]
struct State {
    entries: HashMap<UserId, Entry>,
    /// How many events were applied so far: an entry records this count when an event changes
    /// it, so that a resync knows which entries changed after its listing started.
    events: u64,
}

struct Entry {
    username: String,
    connected: bool,
    /// The entry as `users` carries it for a peer without a conversation
    /// (`{"userID","username","connected","messages":[],"unread":0}`): encoded once per
    /// change, copied
    /// into every `users`.
    json: Box<RawValue>,
    /// The event count when an event last changed this entry (0: set by a listing).
    changed: u64,
}

impl Entry {
    fn new(user_id: &UserId, username: String, connected: bool, changed: u64) -> Option<Self> {
        let event = UserEvent {
            unread: Some(0),
            ..UserEvent::announced(user_id, &username, connected)
        };
        match serde_json::value::to_raw_value(&event) {
            Ok(json) => Some(Self {
                json,
                username,
                connected,
                changed,
            }),
            Err(err) => {
                tracing::error!(%user_id, %err, "cannot encode a directory entry");
                None
            }
        }
    }
}

impl Directory {
    pub fn new(metrics: Metrics) -> Self {
        Self(Arc::new(Inner {
            state: RwLock::default(),
            loaded: watch::Sender::new(false),
            metrics,
        }))
    }

    /// Applies `user connected` (this node's or another's).
    pub fn connected(&self, user_id: &UserId, username: &str) {
        let mut state = self.write();
        state.events += 1;
        let changed = state.events;
        if let Some(entry) = Entry::new(user_id, username.to_owned(), true, changed) {
            state.entries.insert(user_id.clone(), entry);
        }
        self.0
            .metrics
            .directory_users
            .set(state.entries.len() as i64);
    }

    /// Applies `user disconnected`. A user unknown here stays unknown: the event has no
    /// username, and the next resync lists the user with its stored status.
    pub fn disconnected(&self, user_id: &str) {
        let mut state = self.write();
        state.events += 1;
        let changed = state.events;
        let Some((id, old)) = state.entries.remove_entry(user_id) else {
            return;
        };
        let entry = Entry::new(&id, old.username, false, changed);
        if let Some(entry) = entry {
            state.entries.insert(id, entry);
        }
    }

    /// Drops an erased user (the server API's `DELETE /api/users/{userID}`), whose sessions
    /// are already deleted. A resync whose listing read them before that puts it back, until
    /// the next resync (a known gap: a tombstone would close it).
    pub fn forget(&self, user_id: &str) {
        let mut state = self.write();
        state.events += 1;
        state.entries.remove(user_id);
        self.0
            .metrics
            .directory_users
            .set(state.entries.len() as i64);
    }

    /// Whether the first listing is in; waits up to `within` for it.
    pub async fn wait_loaded(&self, within: Duration) -> bool {
        let mut loaded = self.0.loaded.subscribe();
        let wait = loaded.wait_for(|loaded| *loaded);
        matches!(tokio::time::timeout(within, wait).await, Ok(Ok(_)))
    }

    pub fn is_loaded(&self) -> bool {
        *self.0.loaded.borrow()
    }

    /// Where the events stand before a listing starts, for [`Directory::reconcile`].
    fn mark(&self) -> u64 {
        self.read().events
    }

    /// Makes the directory agree with `listed`, a listing of Redis started at `mark`: an entry
    /// an event changed since then keeps the event's value (it is at least as new as what the
    /// listing read); any other entry takes the stored value, and one no longer stored (its
    /// session expired or was deleted) goes. Returns how many entries this changed; the first
    /// load counts none (nothing was wrong, only unknown).
    fn reconcile(&self, mark: u64, listed: Vec<UserEntry>) -> usize {
        let mut listed: HashMap<UserId, UserEntry> = listed
            .into_iter()
            .map(|user| (user.user_id.clone(), user))
            .collect();
        let mut corrections = 0;
        let mut state = self.write();
        state.entries.retain(|id, entry| {
            let stored = listed.remove(id);
            if entry.changed > mark {
                return true;
            }
            let Some(stored) = stored else {
                corrections += 1;
                return false;
            };
            let stale = entry.username != stored.username || entry.connected != stored.connected;
            if stale && let Some(fresh) = Entry::new(id, stored.username, stored.connected, 0) {
                *entry = fresh;
                corrections += 1;
            }
            true
        });
        for (id, stored) in listed {
            if let Some(entry) = Entry::new(&id, stored.username, stored.connected, 0) {
                state.entries.insert(id, entry);
                corrections += 1;
            }
        }
        self.0
            .metrics
            .directory_users
            .set(state.entries.len() as i64);
        drop(state);
        if self.0.loaded.send_replace(true) {
            corrections
        } else {
            0
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.0
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.0
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
