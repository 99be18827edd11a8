//! Sessions: `session:{sessionID}` hashes (their per-socket presence fields are written by
//! [`super::presence`]).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{
    StoreError,
    redis::{RedisPool, keys},
};
use crate::domain::{Session, SessionId, UserId, Username};

mod erasure;

/// How many keys one SCAN step asks for: large enough that listing 10,000 sessions takes two
/// round trips, small enough not to stall Redis for long (a step costs ~1 ms at this size).
const SCAN_COUNT: usize = 5000;

/// One line of the `users` listing: a stored session as other users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserEntry {
    #[serde(rename = "userID")]
    pub user_id: UserId,
    pub username: String,
    pub connected: bool,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: RedisPool,
}

impl SessionStore {
    pub fn new(pool: RedisPool) -> Self {
        Self { pool }
    }

    /// The session a client's sessionID names, if it is stored and has a userID, with the
    /// number of sockets it has open on all nodes.
    pub async fn find(&self, id: &SessionId) -> Result<Option<(Session, usize)>, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::session(id))
            .query_async(&mut conn)
            .await?;
        let sockets = fields
            .keys()
            .filter(|f| f.starts_with(keys::SOCKET_FIELD_PREFIX))
            .count();
        Ok(fields.remove("userID").map(|user_id| {
            let session = Session {
                id: id.clone(),
                user_id: UserId::from_stored(user_id),
                username: Username::from_stored(fields.remove("username").unwrap_or_default()),
            };
            (session, sockets)
        }))
    }

    /// Every stored user, each userID once: SCAN over `session:*` (every master on a cluster),
    /// then one HMGET per key, all in one round trip.
    pub async fn list(&self) -> Result<Vec<UserEntry>, StoreError> {
        let mut conn = self.pool.get().await?;
        let keys = conn.scan_keys(keys::SESSION_PATTERN, SCAN_COUNT).await?;
        let reads = keys
            .iter()
            .map(|key| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(key).arg("userID").arg("username").arg("connected");
                cmd
            })
            .collect();
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = conn.each(reads).await?;
        let mut seen = HashSet::new();
        Ok(rows
            .into_iter()
            .filter_map(|(user_id, username, connected)| {
                let user_id = user_id.filter(|id| seen.insert(id.clone()))?;
                Some(UserEntry {
                    user_id: UserId::from_stored(user_id),
                    username: username.unwrap_or_default(),
                    connected: connected.as_deref() == Some("true"),
                })
            })
            .collect())
    }
}
