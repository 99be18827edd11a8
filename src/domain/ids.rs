//! Identifiers. A sessionID is a bearer secret; a userID is public.
//!
//! A sessionID accepts the Node server's 16-hex-char IDs so that its stored sessions keep
//! working; a userID is opaque, as identity providers issue them. New IDs are UUIDv4 (122
//! random bits).

use std::{borrow::Borrow, fmt};

use serde::{Serialize, Serializer};

/// The secret that lets a client resume a session. Its `Debug`/`Display` are redacted so that
/// it cannot end up in a log line or an error by accident; only [`SessionId::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Accepts what a client may legitimately hold: a UUID or the Node server's hex IDs.
    /// Anything else cannot name a stored session, so it is not worth a Redis round trip.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The secret itself, for the Redis key and the owner's `session` event only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The longest userID accepted, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;

/// The public identity of a user, and the name of the room holding all its sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A userID as this server, the Node server or an identity provider issues them (docs/protocol.md,
    /// "Identity: userIDs as identity providers issue them"): an opaque string of 1 to
    /// [`MAX_USER_ID_CHARS`] characters, none of them a control character or whitespace. So
    /// `auth0|5f7c…`, `user_2NNE…`, `ann@example.com`, a UUID and 16 hex chars all pass; what
    /// such an ID may hold that is special in a Redis key or member is dealt with where the key
    /// is built (`store::redis::keys`).
    pub fn parse(raw: &str) -> Option<Self> {
        let mut chars = 0;
        for c in raw.chars() {
            chars += 1;
            if chars > MAX_USER_ID_CHARS || c.is_control() || c.is_whitespace() {
                return None;
            }
        }
        (chars > 0).then(|| Self(raw.to_owned()))
    }

    /// Wraps an ID read back from our own Redis data, which was checked when it was written
    /// (or written by the Node server, whose IDs we serve as they are).
    pub(crate) fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by userID be searched with a `&str` (a derived `Hash` of the one field hashes
/// as the `str` does).
impl Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_uuids_and_never_printed() {
        let id = SessionId::generate();
        assert!(uuid::Uuid::try_parse(id.expose()).is_ok());
        assert!(!format!("{id:?}").contains(id.expose()));
    }

    #[test]
    fn session_id_parse_accepts_node_and_uuid_ids_only() {
        assert!(SessionId::parse("0123456789abcdef").is_some());
        assert!(SessionId::parse(&uuid::Uuid::new_v4().to_string()).is_some());
        for bad in ["", "a b", "session:*", "x\n", &"a".repeat(65)] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn user_id_parse_accepts_what_identity_providers_issue() {
        let uuid = uuid::Uuid::new_v4().to_string();
        for good in [
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|1093",
            "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
            "8Xh3QoGm1bTqYk2VwZ9s0PcLd4E2",
            "ann@example.com",
            &uuid,
            "0123456789abcdef",
            "x",
            "a:b{c}#d!e\"\\f*?[g]%",
            "ünïcødé-名前",
        ] {
            let parsed = UserId::parse(good).unwrap_or_else(|| panic!("{good:?}"));
            assert_eq!(parsed.as_str(), good, "kept as is");
        }
    }

    #[test]
    fn user_id_parse_counts_characters_up_to_128() {
        assert!(UserId::parse(&"a".repeat(128)).is_some());
        assert!(UserId::parse(&"a".repeat(129)).is_none());
        // Characters, not bytes: 128 two-byte characters pass.
        assert!(UserId::parse(&"é".repeat(128)).is_some());
        assert!(UserId::parse(&"é".repeat(129)).is_none());
    }

    #[test]
    fn user_id_parse_refuses_empty_whitespace_and_control_characters() {
        for bad in [
            "",
            " ",
            "a b",
            " a",
            "a ",
            "a\tb",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\u{3000}b",
            "\u{1b}[31m",
        ] {
            assert!(UserId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_differ_from_each_other() {
        assert_ne!(UserId::generate(), UserId::generate());
    }
}
