//! `users` for one connecting user: the directory's entries plus the user's own history.
//!
//! Every connecting socket gets the same entries but for the few peers it has a conversation
//! with, so the entries are not serialized per socket: each one's JSON, encoded once when it
//! changed, is copied as is, and only the entries that carry messages (and the user's own) are
//! serialized here. The event is serialized once, by the emit itself: building it into a
//! string first and handing that to the emit copied every `users` twice (hundreds of KB per
//! connect with thousands of users; a profile's 5 % of a join storm, in BENCHMARKS.md).

use std::collections::{HashMap, HashSet};

use serde::{Serialize, Serializer, ser::SerializeSeq};

use super::{Directory, State};
use crate::{
    domain::{Message, ReadView, Session},
    socket::payloads::UserEvent,
};

impl Directory {
    /// Hands `send` the `users` event of `me`, whose history is `history` (oldest first):
    /// every user in the directory, each with its conversation with `me`, and `me` itself from
    /// its session (connected, whether or not the directory has heard of it yet). The
    /// directory is read-locked while `send` runs, so `send` must not wait on anything.
    /// The users `me` blocked (`blocked`) carry `blocked: true`.
    pub fn with_users<R>(
        &self,
        me: &Session,
        history: &[Message],
        read: &ReadView<'_>,
        blocked: &HashSet<String>,
        send: impl FnOnce(&Users<'_>) -> R,
    ) -> R {
        let mine = me.user_id.as_str();
        let mut by_peer: HashMap<&str, Vec<&Message>> = HashMap::new();
        for message in history {
            by_peer
                .entry(message.peer_of(mine))
                .or_default()
                .push(message);
        }
        let state = self.read();
        send(&Users {
            state: &state,
            me,
            by_peer: &by_peer,
            read,
            blocked,
        })
    }
}

/// The `users` event of one connecting user, serialized as it is emitted.
pub struct Users<'a> {
    state: &'a State,
    me: &'a Session,
    by_peer: &'a HashMap<&'a str, Vec<&'a Message>>,
    read: &'a ReadView<'a>,
    blocked: &'a HashSet<String>,
}

impl Users<'_> {
    fn conversation(&self, peer: &str) -> Vec<&Message> {
        self.by_peer.get(peer).cloned().unwrap_or_default()
    }
}

impl Serialize for Users<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let me = &self.me.user_id;
        let others = self.state.entries.len() - usize::from(self.state.entries.contains_key(me));
        let mut seq = serializer.serialize_seq(Some(others + 1))?;
        seq.serialize_element(&UserEvent {
            user_id: me,
            username: self.me.username.as_str(),
            connected: true,
            messages: self.conversation(me.as_str()),
            unread: Some(self.read.unread(me.as_str())),
            read_up_to: None,
            blocked: false,
        })?;
        for (user_id, entry) in &self.state.entries {
            if user_id == me {
                continue;
            }
            let blocked = self.blocked.contains(user_id.as_str());
            match blocked || self.by_peer.contains_key(user_id.as_str()) {
                true => seq.serialize_element(&UserEvent {
                    user_id,
                    username: &entry.username,
                    connected: entry.connected,
                    messages: self.conversation(user_id.as_str()),
                    unread: Some(self.read.unread(user_id.as_str())),
                    read_up_to: self.read.read_up_to(user_id.as_str()),
                    blocked,
                })?,
                // A `RawValue` serializes as its text, copied.
                false => seq.serialize_element(&*entry.json)?,
            }
        }
        seq.end()
    }
}
