//! Sessions: `session:{sessionID}` hashes, plus the per-socket presence fields that let every
//! node agree on whether a user is still connected somewhere.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use serde::Serialize;

use super::{
    StoreError,
    redis::{RedisKind, RedisPool, keys, scripts},
};
use crate::domain::{Session, SessionId, UserId, Username};

mod erasure;

/// How many keys one SCAN step asks for: large enough that listing 10,000 sessions takes two
/// round trips, small enough not to stall Redis for long (a step costs ~1 ms at this size).
const SCAN_COUNT: usize = 5000;

/// Identifies one socket of a session in the presence fields: `socket:{nodeID}:{socketID}`.
/// The node part lets a surviving node find what a crashed one left behind.
#[derive(Debug, Clone)]
pub struct SocketTag {
    field: String,
    /// The session list of the socket's node (`privmsg:node:{nodeID}:sessions`).
    node_sessions: String,
    /// The prefix of every field of this socket's node.
    node_fields: String,
}

impl SocketTag {
    pub fn new(node_id: &str, socket_id: &str) -> Self {
        Self {
            field: keys::socket_field(node_id, socket_id),
            node_sessions: keys::node_sessions(node_id),
            node_fields: keys::node_socket_fields(node_id),
        }
    }

    /// The socket's field in its session hash.
    pub(super) fn field(&self) -> &str {
        &self.field
    }
}

/// One presence field found in a session hash: which node wrote it, for which socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceField {
    pub node: String,
    pub socket: String,
}

/// What forgetting one socket did to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It was the session's last socket anywhere: the session is saved offline (announce it).
    Offline,
    /// Its node holds no other socket of the session; other nodes still do.
    LeftNode,
    /// Another socket of the session is on the same node (or this one was already forgotten).
    Stays,
}

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
    ttl: Duration,
    /// Where a connect lists the session under its node, chosen from the pool's kind when
    /// built.
    node_listing: NodeListing,
}

/// The two ways a connect lists its session under the socket's node before it records the
/// socket (see [`SessionStore::connect`]).
#[derive(Clone, Copy)]
enum NodeListing {
    /// A standalone Redis: in the connect script itself, one call for both keys.
    InScript,
    /// A Redis Cluster: the node's list sits on another slot than the session, where a script
    /// cannot reach it: SADD and EXPIRE first, one round trip more.
    Before,
}

impl SessionStore {
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        let node_listing = match pool.kind() {
            RedisKind::Standalone => NodeListing::InScript,
            RedisKind::Cluster => NodeListing::Before,
        };
        Self {
            pool,
            ttl,
            node_listing,
        }
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

    /// Saves the session as connected and records `socket` as one of its sockets, after
    /// listing the session under the socket's node: a node that dies between the two leaves a
    /// session listed with nothing to clean, never a field no sweep would find. One script call
    /// on a standalone Redis (both in one step); on a cluster the list is on another slot, so
    /// one round trip more, before.
    pub async fn connect(&self, session: &Session, socket: &SocketTag) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let ttl = self.ttl.as_secs();
        let mut call = scripts::SESSION_CONNECT.key(keys::session(&session.id));
        call.arg(session.user_id.as_str())
            .arg(session.username.as_str())
            .arg(ttl)
            .arg(&socket.field);
        match self.node_listing {
            NodeListing::InScript => {
                call.key(&socket.node_sessions).arg(session.id.expose());
            }
            NodeListing::Before => {
                let add = redis::cmd("SADD")
                    .arg(&socket.node_sessions)
                    .arg(session.id.expose())
                    .to_owned();
                let expire = redis::cmd("EXPIRE")
                    .arg(&socket.node_sessions)
                    .arg(ttl)
                    .to_owned();
                conn.each::<redis::Value>(vec![add, expire]).await?;
            }
        }
        call.invoke_async::<i64>(&mut conn).await?;
        Ok(())
    }

    /// Forgets `socket`: whether that took the session offline (it is then saved with
    /// `connected = false`), or off this node only.
    pub async fn disconnect(
        &self,
        session: &Session,
        socket: &SocketTag,
    ) -> Result<Departure, StoreError> {
        let mut conn = self.pool.get().await?;
        let outcome: i64 = scripts::SESSION_DISCONNECT
            .key(keys::session(&session.id))
            .arg(session.user_id.as_str())
            .arg(session.username.as_str())
            .arg(self.ttl.as_secs())
            .arg(&socket.field)
            .arg(&socket.node_fields)
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome {
            1 => Departure::Offline,
            2 => Departure::LeftNode,
            _ => Departure::Stays,
        })
    }

    /// Every session that holds presence fields, with those fields: a walk of `session:*`, a
    /// SCAN page of `page` keys and one HKEYS per key of it per round trip, at most one page per
    /// `pace`.
    /// Every node audits, so the walk is paced and keeps only the sessions with fields (the
    /// online users), not every key: with 1,000,000 stored, one HKEYS pipeline of every
    /// session (as before) held Redis and a million keys in the node's memory at each audit.
    /// Session keys are raw (as [`keys::session_raw`] builds them), for the sweep.
    pub async fn socket_fields(
        &self,
        page: usize,
        pace: Duration,
    ) -> Result<Vec<(String, Vec<PresenceField>)>, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut walk = conn.walk_keys(keys::SESSION_PATTERN, page, pace).await?;
        let mut found = Vec::new();
        while let Some(keys) = walk.next_page().await? {
            let reads = keys
                .iter()
                .map(|key| redis::cmd("HKEYS").arg(key).to_owned())
                .collect();
            let fields: Vec<Vec<String>> = conn.each(reads).await?;
            found.extend(keys.into_iter().zip(fields).filter_map(presence_fields));
        }
        Ok(found)
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

/// A session key and its field names, as the audit keeps them: only if it has presence fields.
fn presence_fields((key, fields): (String, Vec<String>)) -> Option<(String, Vec<PresenceField>)> {
    let session = key.strip_prefix(keys::SESSION_PREFIX)?.to_owned();
    let fields: Vec<PresenceField> = fields
        .iter()
        .filter_map(|field| keys::parse_socket_field(field))
        .map(|(node, socket)| PresenceField {
            node: node.to_owned(),
            socket: socket.to_owned(),
        })
        .collect();
    (!fields.is_empty()).then_some((session, fields))
}
