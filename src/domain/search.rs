//! A `search users` request, checked: `{ query, limit }` (docs/protocol.md, "Client
//! to server").

use serde_json::Value;

/// Longest query, in characters: no username is longer.
pub const MAX_QUERY_CHARS: usize = super::username::MAX_USERNAME_CHARS;
/// Most users one search returns, and how many when the client does not say.
pub const MAX_LIMIT: u64 = 50;
pub const DEFAULT_LIMIT: usize = 20;

/// Why a search is refused; the `Display` text is the `{ error }` the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchRefusal {
    #[error("query must be a string of 1 to 64 characters")]
    InvalidQuery,
    #[error("limit must be an integer from 1 to 50")]
    InvalidLimit,
    #[error("rate limited")]
    RateLimited,
    #[error("storage unavailable")]
    StorageUnavailable,
}

impl SearchRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidQuery => "invalid_query",
            Self::InvalidLimit => "invalid_limit",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query lowercased, as the username index stores names.
    pub prefix: String,
    pub limit: usize,
}

impl SearchQuery {
    /// `payload` must be an object with `query`, a string of 1..=64 characters, and an
    /// optional `limit` (absent or null: 20), a whole number from 1 to 50.
    ///
    /// A query with a control character is refused as well: no username we store has one, and
    /// a NUL would reach into the userID part of the index's members.
    pub fn parse(payload: &Value) -> Result<Self, SearchRefusal> {
        let query = payload
            .get("query")
            .and_then(Value::as_str)
            .filter(|q| (1..=MAX_QUERY_CHARS).contains(&q.chars().count()))
            .filter(|q| !q.chars().any(char::is_control))
            .ok_or(SearchRefusal::InvalidQuery)?;
        let limit = match payload.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(limit) => limit
                .as_u64()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(SearchRefusal::InvalidLimit)?,
        };
        Ok(Self {
            prefix: query.to_lowercase(),
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_query_is_lowercased_and_the_limit_defaults_to_20() {
        let parsed = SearchQuery::parse(&json!({ "query": "AlÉ" })).expect("valid");
        assert_eq!(parsed.prefix, "alé");
        assert_eq!(parsed.limit, 20);
        let parsed = SearchQuery::parse(&json!({ "query": "a", "limit": 50 })).expect("valid");
        assert_eq!(parsed.limit, 50);
        assert!(SearchQuery::parse(&json!({ "query": "é".repeat(64) })).is_ok());
    }

    #[test]
    fn bad_queries_are_refused_with_the_query_reason() {
        for bad in [
            json!(null),
            json!("alice"),
            json!([]),
            json!({}),
            json!({ "query": "" }),
            json!({ "query": 5 }),
            json!({ "query": "x".repeat(65) }),
            json!({ "query": "a\u{0}b" }),
        ] {
            assert_eq!(
                SearchQuery::parse(&bad),
                Err(SearchRefusal::InvalidQuery),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_limits_are_refused_with_the_limit_reason() {
        for bad in [
            json!(0),
            json!(51),
            json!(-1),
            json!(2.5),
            json!("5"),
            json!(true),
        ] {
            assert_eq!(
                SearchQuery::parse(&json!({ "query": "a", "limit": bad })),
                Err(SearchRefusal::InvalidLimit),
                "{bad}"
            );
        }
    }
}
