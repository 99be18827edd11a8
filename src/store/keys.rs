//! Every Redis key name is built here, and only here.

use crate::domain::{SessionId, UserId};

/// SCAN pattern matching every session hash.
pub const SESSION_PATTERN: &str = "session:*";

pub fn session(id: &SessionId) -> String {
    format!("session:{}", id.expose())
}

pub fn messages(user: &str) -> String {
    format!("messages:{user}")
}

pub fn messages_of(user: &UserId) -> String {
    messages(user.as_str())
}
