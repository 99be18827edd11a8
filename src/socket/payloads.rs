//! The shapes of the server-to-client events, named as the wire names them.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::{Message, UserId};

/// `session`: sent to its owner only; the one place a sessionID leaves the server.
#[derive(Serialize)]
pub struct SessionEvent<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    #[serde(rename = "userID")]
    pub user_id: &'a UserId,
}

/// One entry of `users`, and the payload of `user connected` (with no messages).
#[derive(Serialize)]
pub struct UserEvent<'a> {
    #[serde(rename = "userID")]
    pub user_id: &'a UserId,
    pub username: &'a str,
    pub connected: bool,
    pub messages: Vec<&'a Message>,
    /// In `users` only: messages from this user to the connecting one past its read mark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<usize>,
    /// In `users` only: how far this user has read its conversation with the connecting one
    /// (the id of the newest message it read), when it has read any.
    #[serde(rename = "readUpTo", skip_serializing_if = "Option::is_none")]
    pub read_up_to: Option<&'a str>,
    /// In `users` only: the connecting user blocked this one (`block user`); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

impl<'a> UserEvent<'a> {
    /// A user as announced to others (`user connected`): no conversation, no read state.
    pub fn announced(user_id: &'a UserId, username: &'a str, connected: bool) -> Self {
        Self {
            user_id,
            username,
            connected,
            messages: Vec::new(),
            unread: None,
            read_up_to: None,
            blocked: false,
        }
    }
}

/// The acknowledgement of a `private message`: exactly one of the two fields. The message is
/// the JSON encoded once for storage and delivery.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageAck<'a> {
    Message(&'a RawValue),
    Error(String),
}

/// Encodes an event's payload once, for every socket and every node it goes to.
pub(crate) fn encode(payload: &impl serde::Serialize) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(payload)
        .inspect_err(|err| tracing::error!(%err, "cannot encode an event"))
        .ok()
}
