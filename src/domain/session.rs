//! A user's session: what the handshake resolves and every handler of the socket reads.

use super::{SessionId, UserId, Username};

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub username: Username,
}

impl Session {
    /// A brand-new session for a user who just picked a name.
    pub fn create(username: Username) -> Self {
        Self {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            username,
        }
    }
}
