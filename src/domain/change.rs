//! `delete message` `{ with, id }` and `edit message` `{ with, id, content }` from a client
//! (PROTOCOL.md "Moderation"): what they name, checked; whether the caller may is decided
//! against the stored message ([`MessageChange::allowed`]).

use serde_json::Value;

use super::{Message, MessageContent, Refusal, UserId};

/// Why a delete or an edit was refused (the `{ error }` of its ack).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefusal {
    #[error("invalid payload: expected an object {{ with, id }}")]
    InvalidPayload,
    #[error("with must be a userID")]
    InvalidPeer,
    #[error("id must be a messageID")]
    InvalidId,
    /// The content checks of a new message, with their texts.
    #[error("{0}")]
    Content(Refusal),
    #[error("unknown message")]
    UnknownMessage,
    #[error("not your message")]
    NotYours,
    #[error("editing is off")]
    EditingOff,
    #[error("too late to edit")]
    TooLate,
    #[error("rate limited, slow down")]
    RateLimited,
    #[error("storage unavailable, try again")]
    StorageUnavailable,
}

impl ChangeRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidPeer => "invalid_peer",
            Self::InvalidId => "invalid_id",
            Self::Content(refusal) => refusal.metric_label(),
            Self::UnknownMessage => "unknown_message",
            Self::NotYours => "not_yours",
            Self::EditingOff => "editing_off",
            Self::TooLate => "too_late",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// A checked delete (`content: None`) or edit.
#[derive(Debug)]
pub struct MessageChange {
    pub with: UserId,
    pub id: String,
    pub content: Option<MessageContent>,
}

impl MessageChange {
    /// `edit`: whether `content` is asked for, and checked as a new message's.
    pub fn parse(payload: &Value, edit: bool, max_bytes: usize) -> Result<Self, ChangeRefusal> {
        let fields = payload.as_object().ok_or(ChangeRefusal::InvalidPayload)?;
        let with = fields
            .get("with")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
            .ok_or(ChangeRefusal::InvalidPeer)?;
        let id = fields
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| id.len() == 36 && uuid::Uuid::try_parse(id).is_ok())
            .ok_or(ChangeRefusal::InvalidId)?;
        let content = match (edit, fields.get("content")) {
            (false, _) => None,
            (true, Some(Value::String(text))) => {
                Some(MessageContent::parse(text, max_bytes).map_err(ChangeRefusal::Content)?)
            }
            (true, _) => return Err(ChangeRefusal::Content(Refusal::InvalidContent)),
        };
        Ok(Self {
            with,
            id: id.to_owned(),
            content,
        })
    }

    /// Whether `me` may change `message` at `now_ms`, editing within `window_ms` of its
    /// timestamp (0: never).
    pub fn allowed(
        &self,
        message: &Message,
        me: &UserId,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<(), ChangeRefusal> {
        if message.from != me.as_str() {
            return Err(ChangeRefusal::NotYours);
        }
        if self.content.is_none() {
            return Ok(());
        }
        if window_ms == 0 {
            return Err(ChangeRefusal::EditingOff);
        }
        match message.timestamp {
            Some(at) if now_ms <= at.saturating_add(window_ms) => Ok(()),
            _ => Err(ChangeRefusal::TooLate),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "0190f1a2-0000-7000-8000-000000000000";

    #[test]
    fn a_change_names_a_conversation_and_a_message_id() {
        let ok = MessageChange::parse(&json!({ "with": "b", "id": ID }), false, 10).expect("ok");
        assert!(ok.content.is_none());
        let cases = [
            (json!("x"), ChangeRefusal::InvalidPayload),
            (json!({ "id": ID }), ChangeRefusal::InvalidPeer),
            (json!({ "with": "b" }), ChangeRefusal::InvalidId),
            (json!({ "with": "b", "id": "7" }), ChangeRefusal::InvalidId),
        ];
        for (payload, refusal) in cases {
            assert_eq!(
                MessageChange::parse(&payload, true, 10).map(|_| ()),
                Err(refusal)
            );
        }
        let edit = |content: Value| {
            MessageChange::parse(
                &json!({ "with": "b", "id": ID, "content": content }),
                true,
                3,
            )
            .map(|_| ())
        };
        assert_eq!(
            edit(json!(" ")),
            Err(ChangeRefusal::Content(Refusal::InvalidContent))
        );
        assert_eq!(
            edit(json!("long")),
            Err(ChangeRefusal::Content(Refusal::ContentTooLong(3)))
        );
        assert_eq!(edit(json!("ok")), Ok(()));
    }

    #[test]
    fn only_the_sender_may_and_an_edit_only_within_the_window() {
        let (me, other) = (
            UserId::parse("a").expect("id"),
            UserId::parse("b").expect("id"),
        );
        let message = Message {
            content: "hi".into(),
            from: "a".into(),
            to: "b".into(),
            id: Some(ID.into()),
            timestamp: Some(1_000),
            edited_at: None,
        };
        let delete =
            MessageChange::parse(&json!({ "with": "b", "id": ID }), false, 10).expect("ok");
        assert_eq!(delete.allowed(&message, &me, 10_000_000, 0), Ok(()));
        assert_eq!(
            delete.allowed(&message, &other, 0, 0),
            Err(ChangeRefusal::NotYours)
        );
        let edit =
            MessageChange::parse(&json!({ "with": "b", "id": ID, "content": "x" }), true, 10)
                .expect("ok");
        assert_eq!(edit.allowed(&message, &me, 2_000, 1_000), Ok(()));
        assert_eq!(
            edit.allowed(&message, &me, 2_001, 1_000),
            Err(ChangeRefusal::TooLate)
        );
        assert_eq!(
            edit.allowed(&message, &me, 1_000, 0),
            Err(ChangeRefusal::EditingOff)
        );
    }
}
