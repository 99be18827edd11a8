//! `typing` from a client: `{ to: userID }`. Never stored; forwarded to the recipient's sockets.

use serde_json::Value;

use super::UserId;

/// Why a `typing` event was not forwarded (the `{ error }` of its ack, when one was asked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypingRefusal {
    #[error("invalid payload: expected an object {{ to }}")]
    InvalidPayload,
    #[error("to must be a userID")]
    InvalidRecipient,
    #[error("rate limited, slow down")]
    RateLimited,
}

impl TypingRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidRecipient => "invalid_recipient",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// A checked `typing` event: whom the sender is typing to.
#[derive(Debug, PartialEq, Eq)]
pub struct Typing {
    pub to: UserId,
}

impl Typing {
    /// Other fields are ignored, as a newer client may send more than this server reads.
    pub fn parse(payload: &Value) -> Result<Self, TypingRefusal> {
        let Some(fields) = payload.as_object() else {
            return Err(TypingRefusal::InvalidPayload);
        };
        let to = fields
            .get("to")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
            .ok_or(TypingRefusal::InvalidRecipient)?;
        Ok(Self { to })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "0123456789abcdef";

    #[test]
    fn a_typing_event_names_a_user() {
        let typing = Typing::parse(&json!({ "to": ID, "extra": 1 })).expect("valid");
        assert_eq!(typing.to.as_str(), ID);
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for (payload, refusal) in [
            (json!(null), TypingRefusal::InvalidPayload),
            (json!("to"), TypingRefusal::InvalidPayload),
            (json!([ID]), TypingRefusal::InvalidPayload),
            (json!({}), TypingRefusal::InvalidRecipient),
            (json!({ "to": 5 }), TypingRefusal::InvalidRecipient),
            (
                json!({ "to": "not an id" }),
                TypingRefusal::InvalidRecipient,
            ),
        ] {
            assert_eq!(Typing::parse(&payload), Err(refusal), "{payload}");
        }
    }
}
