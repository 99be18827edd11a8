//! Private messages: the checked request a client sends, and the message as stored and delivered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserId;

/// Why a `private message` was refused. The `Display` text is the short, safe reason sent back in
/// the `{ error }` acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid payload: expected an object {{ content, to }}")]
    InvalidPayload,
    #[error("content must be a non-empty string")]
    InvalidContent,
    #[error("content is longer than {0} bytes")]
    ContentTooLong(usize),
    #[error("to must be a userID")]
    InvalidRecipient,
    #[error("rate limited, slow down")]
    RateLimited,
    #[error("server busy, message not sent")]
    Busy,
    #[error("storage unavailable, message not sent")]
    StorageUnavailable,
}

impl Refusal {
    /// A short, fixed label for metrics (the error text carries a number).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidContent => "invalid_content",
            Self::ContentTooLong(_) => "too_long",
            Self::InvalidRecipient => "invalid_recipient",
            Self::RateLimited => "rate_limited",
            Self::Busy => "busy",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// Message text: a non-empty string within the configured size, counted in UTF-8 bytes because
/// that is what Redis, the wire and memory pay for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub fn parse(raw: &str, max_bytes: usize) -> Result<Self, Refusal> {
        if raw.trim().is_empty() {
            return Err(Refusal::InvalidContent);
        }
        if raw.len() > max_bytes {
            return Err(Refusal::ContentTooLong(max_bytes));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A `private message` payload from a client, checked: `{ content, to }`. Extra fields are
/// ignored; in particular a client-sent `from` is never trusted.
impl MessageContent {
    pub fn into_string(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub content: MessageContent,
    pub to: UserId,
}

impl OutgoingMessage {
    pub fn parse(payload: &Value, max_bytes: usize) -> Result<Self, Refusal> {
        let fields = payload.as_object().ok_or(Refusal::InvalidPayload)?;
        let content = match fields.get("content") {
            Some(Value::String(text)) => MessageContent::parse(text, max_bytes)?,
            _ => return Err(Refusal::InvalidContent),
        };
        let to = fields
            .get("to")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
            .ok_or(Refusal::InvalidRecipient)?;
        Ok(Self { content, to })
    }
}

/// A message as stored in `messages:{userID}` and delivered in `private message` and `users`.
/// `id` and `timestamp` are absent on messages written by the Node server; they are served as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub content: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// When its sender last edited it (`edit message`), in ms; absent until then.
    #[serde(rename = "editedAt", default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
}

impl Message {
    /// Stamps a checked request with its sender, a time-ordered unique id and the time.
    pub fn new(from: &UserId, outgoing: OutgoingMessage) -> Self {
        let id = uuid::Uuid::now_v7();
        let timestamp = id
            .get_timestamp()
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                secs * 1000 + u64::from(nanos) / 1_000_000
            })
            .unwrap_or_default();
        Self {
            content: outgoing.content.0,
            from: from.as_str().to_owned(),
            to: outgoing.to.as_str().to_owned(),
            id: Some(id.to_string()),
            timestamp: Some(timestamp),
            edited_at: None,
        }
    }

    /// Whether this message is of the conversation between `a` and `b`, either way.
    pub fn between(&self, a: &str, b: &str) -> bool {
        (self.from == a && self.to == b) || (self.from == b && self.to == a)
    }

    /// The other party of this message, seen from `user`'s side of the conversation.
    pub fn peer_of(&self, user: &str) -> &str {
        if self.from == user {
            &self.to
        } else {
            &self.from
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PEER: &str = "0123456789abcdef";

    #[test]
    fn a_well_formed_payload_is_accepted() {
        let msg = OutgoingMessage::parse(&json!({"content": "hi", "to": PEER}), 10).unwrap();
        assert_eq!(msg.to.as_str(), PEER);
    }

    #[test]
    fn malformed_payloads_are_refused_with_their_reason() {
        let cases = [
            (json!(null), Refusal::InvalidPayload),
            (json!(42), Refusal::InvalidPayload),
            (json!("hi"), Refusal::InvalidPayload),
            (json!(["hi", PEER]), Refusal::InvalidPayload),
            (json!({"to": PEER}), Refusal::InvalidContent),
            (json!({"content": 5, "to": PEER}), Refusal::InvalidContent),
            (
                json!({"content": "  ", "to": PEER}),
                Refusal::InvalidContent,
            ),
            (
                json!({"content": "x".repeat(11), "to": PEER}),
                Refusal::ContentTooLong(10),
            ),
            (json!({"content": "hi"}), Refusal::InvalidRecipient),
            (json!({"content": "hi", "to": 7}), Refusal::InvalidRecipient),
            (
                json!({"content": "hi", "to": "room of everyone"}),
                Refusal::InvalidRecipient,
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(
                OutgoingMessage::parse(&payload, 10).unwrap_err(),
                want,
                "{payload}"
            );
        }
    }

    #[test]
    fn size_is_counted_in_bytes() {
        assert!(MessageContent::parse(&"é".repeat(5), 10).is_ok());
        assert!(MessageContent::parse(&"é".repeat(6), 10).is_err());
    }

    /// `index_conversation.lua` finds a stored message's parties and id as text, without
    /// decoding it: this is the form it matches, whatever the content holds.
    #[test]
    fn a_stored_message_spells_its_parties_together_and_its_id_as_the_index_script_reads_them() {
        let from = UserId::generate();
        let content = r#"x","from":"forged","to":"forged","id":"forged"#;
        let out = OutgoingMessage::parse(&json!({"content": content, "to": PEER}), 100).unwrap();
        let message = Message::new(&from, out);
        let json = serde_json::value::to_raw_value(&message)
            .unwrap()
            .get()
            .to_owned();
        let parties = format!(r#""from":"{}","to":"{PEER}""#, from.as_str());
        assert!(json.contains(&parties), "{json}");
        let id = format!(r#""id":"{}""#, message.id.as_deref().unwrap());
        // The first `"id":"` of the text is the message's own: the content's quotes are escaped.
        assert_eq!(json.find(r#""id":""#), json.find(&id), "{json}");
        assert!(!json.contains(r#""from":"forged""#), "{json}");
    }

    #[test]
    fn a_new_message_carries_a_time_ordered_id_and_millisecond_time() {
        let from = UserId::generate();
        let make = || {
            let out = OutgoingMessage::parse(&json!({"content": "a", "to": PEER}), 10).unwrap();
            Message::new(&from, out)
        };
        let (first, second) = (make(), make());
        assert!(first.id < second.id);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now_ms.abs_diff(first.timestamp.unwrap()) < 5_000);
        assert_eq!(first.from, from.as_str());
    }

    #[test]
    fn legacy_messages_without_id_or_timestamp_round_trip_unchanged() {
        let raw = r#"{"content":"hello","from":"0123456789abcdef","to":"fedcba9876543210"}"#;
        let msg: Message = serde_json::from_str(raw).unwrap();
        assert_eq!(serde_json::to_string(&msg).unwrap(), raw);
        assert_eq!(msg.peer_of("0123456789abcdef"), "fedcba9876543210");
    }
}
