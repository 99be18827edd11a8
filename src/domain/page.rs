//! History pages (PROTOCOL.md, "Message history pages"): the checked `fetch messages` request,
//! and how a message is addressed by `before`.
//!
//! A message this server stored has an `id` (UUIDv7). One the Node server wrote has none: it
//! is addressed as `legacy:<n>`, `n` counting the id-less entries of the user's own history
//! from its newest one (1) back. Only the Node server writes id-less entries, and a history
//! only grows at its end (with ids) and is trimmed from its start, so `n` names the same entry
//! for as long as it is stored.

use serde_json::Value;

use super::{Message, UserId};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;
const LEGACY_PREFIX: &str = "legacy:";

/// Why a `fetch messages` was not answered with a page (its `{ error }`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageRefusal {
    #[error("invalid payload: expected an object {{ with, before?, limit? }}")]
    InvalidPayload,
    #[error("with must be a userID")]
    InvalidPeer,
    #[error("before must be a messageID")]
    InvalidBefore,
    #[error("limit must be an integer from 1 to 100")]
    InvalidLimit,
    #[error("rate limited, slow down")]
    RateLimited,
    #[error("storage unavailable")]
    StorageUnavailable,
}

impl PageRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidPeer => "invalid_with",
            Self::InvalidBefore => "invalid_before",
            Self::InvalidLimit => "invalid_limit",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// Where a page ends: just older than this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// A message with an id (a UUID).
    Id(String),
    /// A message without one, by its `legacy:<n>` address.
    Legacy(usize),
}

impl Before {
    /// The message's address, as its `id` reads in a page.
    pub fn address(&self) -> String {
        match self {
            Self::Id(id) => id.clone(),
            Self::Legacy(n) => legacy_address(*n),
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        if let Some(n) = raw.strip_prefix(LEGACY_PREFIX) {
            let n: usize = n.parse().ok()?;
            return (n >= 1 && !raw.contains('+')).then_some(Self::Legacy(n));
        }
        (raw.len() == 36 && uuid::Uuid::try_parse(raw).is_ok()).then(|| Self::Id(raw.to_owned()))
    }
}

/// A checked `fetch messages`: `{ with, before?, limit? }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub with: UserId,
    pub before: Option<Before>,
    pub limit: usize,
}

impl PageRequest {
    /// Other fields are ignored; `null` stands for an absent `before` / `limit`.
    pub fn parse(payload: &Value) -> Result<Self, PageRefusal> {
        let fields = payload.as_object().ok_or(PageRefusal::InvalidPayload)?;
        let with = fields
            .get("with")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
            .ok_or(PageRefusal::InvalidPeer)?;
        let before = match fields.get("before") {
            None | Some(Value::Null) => None,
            Some(raw) => Some(
                raw.as_str()
                    .and_then(Before::parse)
                    .ok_or(PageRefusal::InvalidBefore)?,
            ),
        };
        let limit = match fields.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(raw) => raw
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(PageRefusal::InvalidLimit)?,
        };
        Ok(Self {
            with,
            before,
            limit,
        })
    }
}

/// The `legacy:<n>` number of each entry of a history (oldest first) that has no id.
pub fn legacy_numbers(history: &[Message]) -> Vec<Option<usize>> {
    let mut n = history.iter().filter(|m| m.id.is_none()).count();
    history
        .iter()
        .map(|message| {
            message.id.is_none().then(|| {
                let this = n;
                n -= 1;
                this
            })
        })
        .collect()
}

/// The address of the `n`-th id-less entry of a history, counted from the newest.
pub fn legacy_address(n: usize) -> String {
    format!("{LEGACY_PREFIX}{n}")
}

/// Gives each id-less message of `history` its `legacy:<n>` address as its id, for a client
/// that pages back from it.
pub fn address_legacy(history: &mut [Message]) {
    let numbers = legacy_numbers(history);
    for (message, n) in history.iter_mut().zip(numbers) {
        if let Some(n) = n {
            message.id = Some(legacy_address(n));
        }
    }
}

/// `HISTORY_ON_CONNECT`: the newest `per_conversation` messages of each of `me`'s
/// conversations, oldest first, with legacy addresses (so `fetch messages` can page back).
pub fn newest_per_conversation(
    mut history: Vec<Message>,
    me: &str,
    per_conversation: usize,
) -> Vec<Message> {
    address_legacy(&mut history);
    let mut kept = std::collections::HashMap::<String, usize>::new();
    let mut newest: Vec<Message> = history
        .into_iter()
        .rev()
        .filter(|message| {
            let count = kept.entry(message.peer_of(me).to_owned()).or_default();
            *count += 1;
            *count <= per_conversation
        })
        .collect();
    newest.reverse();
    newest
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PEER: &str = "0123456789abcdef";
    const ME: &str = "fedcba9876543210";

    fn message(from: &str, to: &str, id: Option<&str>) -> Message {
        Message {
            content: "x".into(),
            from: from.into(),
            to: to.into(),
            id: id.map(str::to_owned),
            timestamp: None,
            edited_at: None,
        }
    }

    #[test]
    fn a_request_names_a_peer_and_defaults_the_rest() {
        let page = PageRequest::parse(&json!({ "with": PEER })).expect("valid");
        assert_eq!(page.limit, DEFAULT_LIMIT);
        assert_eq!(page.before, None);
        let id = uuid::Uuid::now_v7().to_string();
        let page = PageRequest::parse(&json!({ "with": PEER, "before": id, "limit": 100 }))
            .expect("valid");
        assert_eq!(page.before, Some(Before::Id(id)));
        let page = PageRequest::parse(&json!({ "with": PEER, "before": "legacy:3", "limit": 1 }))
            .expect("valid");
        assert_eq!(page.before, Some(Before::Legacy(3)));
    }

    #[test]
    fn every_bad_field_is_refused_with_its_reason() {
        use PageRefusal::*;
        let cases = [
            (json!("x"), InvalidPayload),
            (json!(null), InvalidPayload),
            (json!({}), InvalidPeer),
            (json!({ "with": "no body" }), InvalidPeer),
            (json!({ "with": PEER, "before": 5 }), InvalidBefore),
            (json!({ "with": PEER, "before": "legacy:0" }), InvalidBefore),
            (
                json!({ "with": PEER, "before": "legacy:+1" }),
                InvalidBefore,
            ),
            (
                json!({ "with": PEER, "before": "not-an-id" }),
                InvalidBefore,
            ),
            (json!({ "with": PEER, "limit": 0 }), InvalidLimit),
            (json!({ "with": PEER, "limit": 101 }), InvalidLimit),
            (json!({ "with": PEER, "limit": 2.5 }), InvalidLimit),
            (json!({ "with": PEER, "limit": "10" }), InvalidLimit),
        ];
        for (payload, refusal) in cases {
            assert_eq!(PageRequest::parse(&payload), Err(refusal), "{payload}");
        }
    }

    #[test]
    fn legacy_numbers_count_id_less_entries_from_the_newest() {
        let history = [
            message(PEER, ME, None),
            message(ME, PEER, None),
            message(ME, PEER, Some("a")),
            message(PEER, ME, None),
            message(ME, PEER, Some("b")),
        ];
        assert_eq!(
            legacy_numbers(&history),
            [Some(3), Some(2), None, Some(1), None]
        );
    }

    #[test]
    fn history_on_connect_keeps_the_newest_of_each_conversation() {
        const OTHER: &str = "00000000000000aa";
        let history = vec![
            message(PEER, ME, None),
            message(ME, OTHER, Some("o1")),
            message(ME, PEER, Some("p1")),
            message(OTHER, ME, Some("o2")),
            message(PEER, ME, Some("p2")),
        ];
        let kept = newest_per_conversation(history.clone(), ME, 1);
        let ids: Vec<_> = kept.iter().map(|m| m.id.as_deref().unwrap_or("")).collect();
        assert_eq!(ids, ["o2", "p2"]);
        let kept = newest_per_conversation(history, ME, 3);
        assert_eq!(kept[0].id.as_deref(), Some("legacy:1"));
        assert_eq!(kept.len(), 5);
    }
}
