//! `delete message` and `edit message` in the store: find a message by its id in the caller's
//! history, then replace or remove its exact entry in both histories and, when it exists, the
//! conversation's index (`change_message.lua`, one key per call, so the same on a standalone
//! Redis and a cluster: each history changes atomically on its own). Messages without an id
//! (written by the Node server) are never found.

use super::MessageStore;
use crate::{
    domain::Message,
    store::{
        StoreError,
        redis::{keys, scripts},
    },
};

/// A message as stored: its exact JSON (what the scripts match) and what it says.
pub struct Found {
    pub json: String,
    pub message: Message,
}

impl MessageStore {
    /// The message `id` of `me`'s conversation with `with`, from `me`'s history.
    pub async fn find(&self, me: &str, with: &str, id: &str) -> Result<Option<Found>, StoreError> {
        let mut conn = self.pool.get().await?;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::messages(me))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        // The newest first: a message being changed is most often a recent one.
        Ok(raw.into_iter().rev().find_map(|json| {
            let message: Message = serde_json::from_str(&json).ok()?;
            (message.id.as_deref() == Some(id) && message.between(me, with))
                .then_some(Found { json, message })
        }))
    }

    /// Replaces `found` with `new` (an edit) or removes it (`None`, a delete) in both parties'
    /// histories and their conversation's index. Answers whether the sender's history still
    /// held it (false: another change came first, and nothing was changed by this one there),
    /// and whether the recipient's did (false: it never had it, the recipient having blocked
    /// the sender, or lost it to its trim).
    pub async fn change(
        &self,
        found: &Found,
        new: Option<&str>,
    ) -> Result<(bool, bool), StoreError> {
        let message = &found.message;
        let id = message.id.as_deref().unwrap_or_default();
        let new_member = new.map(|json| keys::conversation_member(id, json));
        let old_member = keys::conversation_member(id, &found.json);
        let mut calls = vec![(keys::messages(&message.from), "list", &found.json, new)];
        if message.to != message.from {
            calls.push((keys::messages(&message.to), "list", &found.json, new));
        }
        let index = keys::conversation(&message.from, &message.to);
        calls.push((index, "zset", &old_member, new_member.as_deref()));
        let conn = self.pool.get().await?;
        let changed =
            futures_util::future::try_join_all(calls.into_iter().map(|(key, kind, old, new)| {
                let mut conn = conn.clone();
                async move {
                    scripts::CHANGE_MESSAGE
                        .key(key)
                        .arg(kind)
                        .arg(old.as_str())
                        .arg(new.unwrap_or_default())
                        .invoke_async::<i64>(&mut conn)
                        .await
                }
            }))
            .await?;
        let held = |i: usize| changed.get(i) == Some(&1);
        let recipient = if message.to != message.from {
            held(1)
        } else {
            held(0)
        };
        Ok((held(0), recipient))
    }
}
