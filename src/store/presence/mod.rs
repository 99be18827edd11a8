//! Presence: which sockets each session has, on which node, so that every node agrees on
//! whether a user is still connected somewhere.
//!
//! Layout (Redis 7.0: no TTL per hash field), three mechanisms with one owner each:
//! 1. **arrive / leave** (the socket's node): a field `socket:{node}:{socket}` in the session
//!    hash, written by `session_connect.lua` / `session_disconnect.lua`, which also keep the
//!    Node-compatible `connected` field; the last one out is decided by Redis in one step. The
//!    node's index `privmsg:node:{node}:sockets` (socketID -> sessionID) gets the socket in the
//!    same step (standalone) or just before the field and just after its removal (cluster,
//!    where it sits on another slot), so no field is ever without its index entry.
//! 2. **the owner's refresh** (each node, every `NODE_TTL_SECS`): it reads its index and its
//!    live sockets' fields, drops the entries no socket of it holds (a leave whose write
//!    failed) and writes again the ones missing (it was swept while alive, Redis lost writes),
//!    announcing the users that changes. So a lost cleanup heals within one refresh interval.
//! 3. **the expiry sweep** ([`nodes`]): a node's entries live as long as its liveness key
//!    (`SET EX NODE_TTL_SECS`, refreshed by a heartbeat task of its own); any live node sweeps
//!    the entries of a node whose key expired, from its index, and announces the users left
//!    with none. A node leaving (SIGTERM) runs the same sweep on itself.
//!
//! Why not an expire-at per entry, refreshed per socket (centrifuge's sorted sets)? That is a
//! write per idle socket per interval (20,000 sockets on a node: 20,000 replicated, AOF-logged
//! writes every interval) and needs an index by expiry that, on a cluster, is one hot slot.
//! Here the expiry is per node (one write per heartbeat), and the owner's refresh costs per
//! idle socket one read: one `HEXISTS` (pipelined, on the session's own slot) plus its share
//! of an `HSCAN` of the index, every `NODE_TTL_SECS` (15 s by default); it writes only what is
//! wrong. Measured on Redis 7 (`INFO commandstats`): 20,000 `HEXISTS` take ~21 ms of Redis
//! time, ~1 µs each, so a 20,000-socket node costs Redis ~0.2 % of a core; one `HGETALL` of a
//! 20,000-entry index held Redis 11 ms at once, hence the index is read in pages.

pub mod nodes;

use std::{collections::HashMap, time::Duration};

use super::{
    Conn, StoreError,
    redis::{RedisKind, RedisPool, keys, scripts},
};
use crate::domain::{Session, UserId};

/// Commands per round trip when the refresh checks its sockets' fields: bounds what one
/// pipeline holds in the node and in Redis for a node with many thousand sockets.
const CHECK_CHUNK: usize = 1000;

/// Entries per `HSCAN` step of an index: ~0.5 ms of Redis time each.
const INDEX_PAGE: usize = 1000;

/// Identifies one socket in the presence layout: its field in its session hash, and its
/// entry in its node's index.
#[derive(Debug, Clone)]
pub struct SocketTag {
    field: String,
    socket: String,
    /// The node's index (`privmsg:node:{nodeID}:sockets`).
    index: String,
    /// The prefix of every field of this socket's node.
    node_fields: String,
}

impl SocketTag {
    pub fn new(node_id: &str, socket_id: &str) -> Self {
        Self {
            field: keys::socket_field(node_id, socket_id),
            socket: socket_id.to_owned(),
            index: keys::node_sockets(node_id),
            node_fields: keys::node_socket_fields(node_id),
        }
    }
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

#[derive(Clone)]
pub struct PresenceStore {
    pool: RedisPool,
    session_ttl: Duration,
    /// Whether the index is written inside the scripts (standalone) or beside them (a
    /// cluster, where it is on another slot), chosen from the pool's kind when built.
    index_in_script: bool,
    nodes: nodes::NodeStore,
}

impl PresenceStore {
    pub fn new(pool: RedisPool, node_ttl: Duration, session_ttl: Duration) -> Self {
        Self {
            index_in_script: pool.kind() == RedisKind::Standalone,
            nodes: nodes::NodeStore::new(pool.clone(), node_ttl, session_ttl),
            pool,
            session_ttl,
        }
    }

    /// The node side: heartbeat, dead nodes, sweep.
    pub fn nodes(&self) -> &nodes::NodeStore {
        &self.nodes
    }

    /// Saves the session as connected and records `socket` as one of its sockets (index entry
    /// first on a cluster: a node that dies between the two leaves an entry with nothing to
    /// clean, never a field no sweep would find). True when the user was offline before.
    pub async fn connect(&self, session: &Session, socket: &SocketTag) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await?;
        let ttl = self.session_ttl.as_secs();
        let mut call = scripts::SESSION_CONNECT.key(keys::session(&session.id));
        call.arg(session.user_id.as_str())
            .arg(session.username.as_str())
            .arg(ttl)
            .arg(&socket.field);
        if self.index_in_script {
            call.key(&socket.index)
                .arg(&socket.socket)
                .arg(session.id.expose());
        } else {
            let set = redis::cmd("HSET")
                .arg(&socket.index)
                .arg(&socket.socket)
                .arg(session.id.expose())
                .to_owned();
            let expire = redis::cmd("EXPIRE").arg(&socket.index).arg(ttl).to_owned();
            conn.on_one_slot(vec![set, expire]).await?;
        }
        Ok(call.invoke_async::<i64>(&mut conn).await? == 1)
    }

    /// Forgets `socket`: whether that took the session offline (it is then saved with
    /// `connected = false`), or off this node only.
    pub async fn disconnect(
        &self,
        session: &Session,
        socket: &SocketTag,
    ) -> Result<Departure, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut call = scripts::SESSION_DISCONNECT.key(keys::session(&session.id));
        call.arg(session.user_id.as_str())
            .arg(session.username.as_str())
            .arg(self.session_ttl.as_secs())
            .arg(&socket.field)
            .arg(&socket.node_fields);
        if self.index_in_script {
            call.key(&socket.index).arg(&socket.socket);
        }
        let outcome: i64 = call.invoke_async(&mut conn).await?;
        if !self.index_in_script {
            self.unindex(&socket.index, std::slice::from_ref(&socket.socket))
                .await?;
        }
        Ok(match outcome {
            1 => Departure::Offline,
            2 => Departure::LeftNode,
            _ => Departure::Stays,
        })
    }

    /// This node's index: socketID -> sessionID of every socket it recorded, its TTL restarted
    /// (an index outlives a node that nobody sweeps by at most a session's TTL).
    pub async fn indexed(&self, node: &str) -> Result<HashMap<String, String>, StoreError> {
        let conn = self.pool.get().await?;
        let index = keys::node_sockets(node);
        let expire = redis::cmd("EXPIRE")
            .arg(&index)
            .arg(self.session_ttl.as_secs())
            .to_owned();
        conn.each::<redis::Value>(vec![expire]).await?;
        read_index(&conn, &index).await
    }

    /// Which of `sockets` (session, tag) have their field in their session hash, in order.
    pub async fn recorded(
        &self,
        sockets: &[(&Session, SocketTag)],
    ) -> Result<Vec<bool>, StoreError> {
        let conn = self.pool.get().await?;
        let mut found = Vec::with_capacity(sockets.len());
        for chunk in sockets.chunks(CHECK_CHUNK) {
            let checks = chunk
                .iter()
                .map(|(session, tag)| {
                    let key = keys::session(&session.id);
                    redis::cmd("HEXISTS").arg(key).arg(&tag.field).to_owned()
                })
                .collect();
            found.extend(conn.each::<bool>(checks).await?);
        }
        Ok(found)
    }

    /// Removes the field and the index entry of a socket this node no longer holds (raw
    /// sessionID, from the index); returns the user when that took it offline (to announce).
    pub async fn drop_entry(
        &self,
        session: &str,
        socket: &SocketTag,
    ) -> Result<Option<UserId>, StoreError> {
        let offline = self.nodes.sweep_session(session, &socket.field).await?;
        self.unindex(&socket.index, std::slice::from_ref(&socket.socket))
            .await?;
        Ok(offline)
    }

    async fn unindex(&self, index: &str, sockets: &[String]) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let cmd = redis::cmd("HDEL").arg(index).arg(sockets).to_owned();
        conn.each::<redis::Value>(vec![cmd]).await?;
        Ok(())
    }
}

/// Every entry of a node's index (socketID -> sessionID), read in `HSCAN` pages so that a
/// large index never holds Redis for long.
pub(super) async fn read_index(
    conn: &Conn,
    index: &str,
) -> Result<HashMap<String, String>, StoreError> {
    let mut entries = HashMap::new();
    let mut cursor = 0u64;
    loop {
        let step = redis::cmd("HSCAN")
            .arg(index)
            .arg(cursor)
            .arg("COUNT")
            .arg(INDEX_PAGE)
            .to_owned();
        let mut replies = conn
            .each::<(u64, Vec<(String, String)>)>(vec![step])
            .await?;
        let (next, page) = replies.pop().unwrap_or_default();
        entries.extend(page);
        if next == 0 {
            return Ok(entries);
        }
        cursor = next;
    }
}
