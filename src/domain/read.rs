//! Read state (PROTOCOL.md, "Read state"): the checked `messages read` request, and the unread
//! counts `users` and `search users` carry.

use std::collections::HashMap;

use serde_json::Value;

use super::{Message, UserId};

/// Why a `messages read` was not applied (its `{ error }`, when an ack was asked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadRefusal {
    #[error("invalid payload: expected an object {{ with, upTo }}")]
    InvalidPayload,
    #[error("with must be a userID")]
    InvalidPeer,
    #[error("upTo must be a messageID")]
    InvalidUpTo,
    /// A mark ahead of the conversation would show the peer read ticks on messages not sent.
    #[error("upTo is not a message of this conversation")]
    UnknownMessage,
    #[error("rate limited, slow down")]
    RateLimited,
    #[error("storage unavailable")]
    StorageUnavailable,
}

impl ReadRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidPeer => "invalid_with",
            Self::InvalidUpTo => "invalid_up_to",
            Self::UnknownMessage => "unknown_message",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// A checked `messages read`: `{ with, upTo }`. Only a message with an id can be a mark (ids
/// are time-ordered, so marks compare); the Node server's messages are never unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub with: UserId,
    pub up_to: String,
}

impl ReadRequest {
    pub fn parse(payload: &Value) -> Result<Self, ReadRefusal> {
        let fields = payload.as_object().ok_or(ReadRefusal::InvalidPayload)?;
        let with = fields
            .get("with")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
            .ok_or(ReadRefusal::InvalidPeer)?;
        let up_to = fields
            .get("upTo")
            .and_then(Value::as_str)
            .filter(|id| id.len() == 36 && uuid::Uuid::try_parse(id).is_ok())
            .ok_or(ReadRefusal::InvalidUpTo)?;
        Ok(Self {
            with,
            up_to: up_to.to_owned(),
        })
    }
}

/// A user's read marks: how far it read each conversation, and how far each peer read its
/// conversation with the user (for read ticks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadMarks {
    /// peer userID -> the newest message of that conversation this user has read.
    pub mine: HashMap<String, String>,
    /// peer userID -> the newest message of that conversation the peer has read.
    pub theirs: HashMap<String, String>,
}

impl ReadMarks {
    /// For each peer, how many messages from it to `me` in `history` are newer than `me`'s
    /// mark of their conversation. Messages without an id are never counted.
    pub fn unread(&self, history: &[Message], me: &str) -> HashMap<String, usize> {
        let mut unread = HashMap::new();
        for message in history {
            let Some(id) = &message.id else { continue };
            if message.to != me || message.from == me {
                continue;
            }
            let mark = self.mine.get(&message.from).map_or("", String::as_str);
            if id.as_str() > mark {
                *unread.entry(message.from.clone()).or_default() += 1;
            }
        }
        unread
    }
}

/// What `users` and `search users` show of the read state, for one connecting user.
pub struct ReadView<'a> {
    unread: HashMap<String, usize>,
    marks: &'a ReadMarks,
}

impl<'a> ReadView<'a> {
    /// `me`'s view, from its whole history (before `HISTORY_ON_CONNECT` cuts it).
    pub fn new(marks: &'a ReadMarks, history: &[Message], me: &str) -> Self {
        Self {
            unread: marks.unread(history, me),
            marks,
        }
    }

    pub fn unread(&self, peer: &str) -> usize {
        self.unread.get(peer).copied().unwrap_or_default()
    }

    /// How far `peer` has read its conversation with this view's user.
    pub fn read_up_to(&self, peer: &str) -> Option<&'a str> {
        self.marks.theirs.get(peer).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PEER: &str = "0123456789abcdef";
    const ME: &str = "fedcba9876543210";

    #[test]
    fn a_read_names_a_peer_and_a_message() {
        let id = uuid::Uuid::now_v7().to_string();
        let read = ReadRequest::parse(&json!({ "with": PEER, "upTo": id })).expect("valid");
        assert_eq!(read.up_to, id);
        use ReadRefusal::*;
        for (payload, refusal) in [
            (json!("x"), InvalidPayload),
            (json!({ "upTo": id }), InvalidPeer),
            (json!({ "with": PEER }), InvalidUpTo),
            (json!({ "with": PEER, "upTo": "legacy:1" }), InvalidUpTo),
            (json!({ "with": PEER, "upTo": 3 }), InvalidUpTo),
        ] {
            assert_eq!(ReadRequest::parse(&payload), Err(refusal), "{payload}");
        }
    }

    #[test]
    fn unread_counts_messages_from_the_peer_past_the_mark() {
        let message = |from: &str, to: &str, id: Option<&str>| Message {
            content: "x".into(),
            from: from.into(),
            to: to.into(),
            id: id.map(str::to_owned),
            timestamp: None,
            edited_at: None,
        };
        let history = [
            message(PEER, ME, None),
            message(PEER, ME, Some("01-a")),
            message(ME, PEER, Some("01-b")),
            message(PEER, ME, Some("01-c")),
            message(PEER, ME, Some("01-d")),
        ];
        let mut marks = ReadMarks::default();
        assert_eq!(marks.unread(&history, ME).get(PEER), Some(&3));
        marks.mine.insert(PEER.into(), "01-c".into());
        assert_eq!(marks.unread(&history, ME).get(PEER), Some(&1));
        assert_eq!(
            marks.unread(&history, PEER).get(ME),
            Some(&1),
            "the peer's side"
        );
    }
}
