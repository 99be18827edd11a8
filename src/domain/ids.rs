//! Identifiers. A sessionID is a bearer secret; a userID is public.
//!
//! Both accept the Node server's 16-hex-char IDs so that its stored sessions keep working;
//! new IDs are UUIDv4 (122 random bits).

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

/// The public identity of a user, and the name of the room holding all its sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A userID as this server or the Node server mints them: a hyphenated UUID or 16 hex chars.
    pub fn parse(raw: &str) -> Option<Self> {
        let legacy = raw.len() == 16 && raw.bytes().all(|b| b.is_ascii_hexdigit());
        let uuid = raw.len() == 36 && uuid::Uuid::try_parse(raw).is_ok();
        (legacy || uuid).then(|| Self(raw.to_owned()))
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
    fn user_id_parse_accepts_uuid_and_legacy_hex() {
        assert!(UserId::parse("0123456789abcdef").is_some());
        assert!(UserId::parse(&uuid::Uuid::new_v4().to_string()).is_some());
        for bad in [
            "",
            "0123456789abcdeg",
            "0123456789abcdef0",
            "not-a-user",
            "../x",
        ] {
            assert!(UserId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_differ_from_each_other() {
        assert_ne!(UserId::generate(), UserId::generate());
    }
}
