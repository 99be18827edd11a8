//! Node liveness: each node refreshes a key with a TTL and records which sessions it holds
//! sockets of, so that the survivors can clean up after a node that died without draining.

use std::{collections::HashSet, time::Duration};

use futures_util::{StreamExt, stream};

use super::{
    SocketTag, StoreError,
    redis::{Conn, RedisPool, keys, scripts},
};
use crate::domain::UserId;

/// How many sessions of a dead node one sweep cleans at the same time: a node that held many
/// thousands must not put all of their scripts in Redis's queue at once.
const SWEEP_CONCURRENCY: usize = 64;

/// What one sweep of a dead node did.
#[derive(Debug, Default)]
pub struct Swept {
    /// The users who went offline with the node (to announce), whatever else failed.
    pub offline: Vec<UserId>,
    /// Sessions that could not be cleaned: the node stays listed, so the next sweep tries them
    /// again (cleaning a session twice is harmless).
    pub failed: usize,
    /// The first failure, for the log.
    pub error: Option<StoreError>,
}

#[derive(Clone)]
pub struct NodeStore {
    pool: RedisPool,
    /// How long a node counts as alive after its last heartbeat.
    ttl: Duration,
    session_ttl: Duration,
}

impl NodeStore {
    pub fn new(pool: RedisPool, ttl: Duration, session_ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            session_ttl,
        }
    }

    /// Refreshes `node`'s liveness. Returns false when the node had been swept as dead (it was
    /// no longer listed), so the caller can record its sockets again.
    pub async fn heartbeat(&self, node: &str) -> Result<bool, StoreError> {
        let conn = self.pool.get().await?;
        let ttl = self.ttl.as_secs().max(1);
        // Alive first, listed second: a sweep takes a node that is listed and not alive for
        // dead, so listing it first would let a sweep running between the two commands sweep a
        // node that is starting (seen under load: its users were then never announced
        // offline after it crashed, since the sweep had also unlisted it). A node that dies
        // between the two on its first heartbeat is left unlisted, but has no sockets yet.
        redis::cmd("SET")
            .arg(keys::node_alive(node))
            .arg(1)
            .arg("EX")
            .arg(ttl)
            .query_async::<()>(&mut conn.clone())
            .await?;
        let added: i64 = redis::cmd("SADD")
            .arg(keys::NODES)
            .arg(node)
            .query_async(&mut conn.clone())
            .await?;
        Ok(added == 0)
    }

    /// Forgets that `node` holds a socket of `session_id` (its last one there left), so that
    /// the node's list stays as long as what it holds, not as long as every session it ever
    /// held. A connect of the same session on the same node racing this can leave its field
    /// unlisted; if the node then dies, the presence audit removes that field.
    pub async fn untrack(&self, node: &str, session_id: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let cmd = redis::cmd("SREM")
            .arg(keys::node_sessions(node))
            .arg(session_id)
            .to_owned();
        conn.each::<redis::Value>(vec![cmd]).await?;
        Ok(())
    }

    /// The listed nodes, other than `me`, whose liveness key has expired.
    pub async fn dead_nodes(&self, me: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::NODES)
            .query_async(&mut conn)
            .await?;
        let others: Vec<String> = nodes.into_iter().filter(|n| n != me).collect();
        let checks = others
            .iter()
            .map(|node| redis::cmd("EXISTS").arg(keys::node_alive(node)).to_owned())
            .collect();
        let alive: Vec<bool> = conn.each(checks).await?;
        Ok(others
            .into_iter()
            .zip(alive)
            .filter_map(|(node, alive)| (!alive).then_some(node))
            .collect())
    }

    /// Removes what a dead node left in every session it held, and forgets the node once every
    /// one of them is clean. Returns the users who went offline with it (to announce), also
    /// when some sessions failed: those users' sessions are already written offline, and no
    /// later sweep would find them again. Safe to run on several survivors at once.
    pub async fn sweep(&self, dead: &str) -> Result<Swept, StoreError> {
        let swept = self.sweep_sessions(dead).await?;
        if swept.failed == 0 {
            let conn = self.pool.get().await?;
            self.forget(&conn, dead).await?;
        }
        Ok(swept)
    }

    /// Removes `node`'s socket fields from every session it recorded; the node stays listed.
    /// A node leaving runs this on itself (see [`NodeStore::retire`]).
    pub async fn sweep_sessions(&self, node: &str) -> Result<Swept, StoreError> {
        let mut conn = self.pool.get().await?;
        let sessions: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::node_sessions(node))
            .query_async(&mut conn)
            .await?;
        let prefix = keys::node_socket_fields(node);
        let ttl = self.session_ttl.as_secs();
        // Each call owns what it sends (the stream outlives the borrows a closure would hold).
        let calls: Vec<_> = sessions
            .iter()
            .map(|session| {
                let mut conn = conn.clone();
                let mut call = scripts::SESSION_SWEEP.key(keys::session_raw(session));
                call.arg(&prefix).arg(ttl);
                async move { call.invoke_async::<Option<String>>(&mut conn).await }
            })
            .collect();
        let mut results = stream::iter(calls).buffer_unordered(SWEEP_CONCURRENCY);
        let mut swept = Swept::default();
        while let Some(result) = results.next().await {
            match result {
                Ok(Some(user)) => swept.offline.push(UserId::from_stored(user)),
                Ok(None) => {}
                Err(err) => {
                    swept.failed += 1;
                    swept.error.get_or_insert(err.into());
                }
            }
        }
        Ok(swept)
    }

    /// Which of `nodes` are gone for good: neither listed nor alive. Their presence fields have
    /// no owner and no sweeper (the node was unlisted, or never listed), so the audit removes
    /// them. A listed node whose liveness expired is left to the sweep.
    pub async fn gone(&self, nodes: Vec<String>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        let listed: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(keys::NODES)
            .query_async(&mut conn)
            .await?;
        let unlisted: Vec<String> = nodes.into_iter().filter(|n| !listed.contains(n)).collect();
        let checks = unlisted
            .iter()
            .map(|node| redis::cmd("EXISTS").arg(keys::node_alive(node)).to_owned())
            .collect();
        let alive: Vec<bool> = conn.each(checks).await?;
        Ok(unlisted
            .into_iter()
            .zip(alive)
            .filter_map(|(node, alive)| (!alive).then_some(node))
            .collect())
    }

    /// Removes `node`'s presence fields from one session (raw ID); returns the user when that
    /// took it offline (to announce).
    pub async fn sweep_session(
        &self,
        session: &str,
        node: &str,
    ) -> Result<Option<UserId>, StoreError> {
        self.remove_fields(session, &keys::node_socket_fields(node))
            .await
    }

    /// Removes one socket's presence field from a session (raw ID); returns the user when that
    /// took it offline (to announce). The whole field serves as the prefix: socket IDs have
    /// one length, so no other field starts with it.
    pub async fn forget_socket(
        &self,
        session: &str,
        socket: &SocketTag,
    ) -> Result<Option<UserId>, StoreError> {
        self.remove_fields(session, socket.field()).await
    }

    /// The session's fields that start with `prefix`, removed by `session_sweep.lua`.
    async fn remove_fields(
        &self,
        session: &str,
        prefix: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let mut conn = self.pool.get().await?;
        let user: Option<String> = scripts::SESSION_SWEEP
            .key(keys::session_raw(session))
            .arg(prefix)
            .arg(self.session_ttl.as_secs())
            .invoke_async(&mut conn)
            .await?;
        Ok(user.map(UserId::from_stored))
    }

    /// A node leaving, after it swept itself: its liveness key goes, so the survivors' next
    /// sweep (within a heartbeat) finds it dead, cleans whatever a socket still finishing its
    /// handshake wrote after that, and unlists it once nothing is left. Unlisting itself
    /// instead would leave such a field with no sweeper, and the user online for good.
    pub async fn retire(&self, node: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let cmd = redis::cmd("DEL").arg(keys::node_alive(node)).to_owned();
        conn.each::<redis::Value>(vec![cmd]).await?;
        Ok(())
    }

    /// Deletes a dead node's keys (one command per key: they may sit on different slots).
    async fn forget(&self, conn: &Conn, node: &str) -> Result<(), StoreError> {
        let cmds = vec![
            redis::cmd("DEL").arg(keys::node_sessions(node)).to_owned(),
            redis::cmd("SREM").arg(keys::NODES).arg(node).to_owned(),
        ];
        conn.each::<redis::Value>(cmds).await?;
        Ok(())
    }
}
