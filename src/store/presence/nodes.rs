//! Node liveness and the expiry sweep: each node refreshes a key with a TTL, and any live node
//! removes the presence entries of a node whose key expired, found in that node's index.

use std::{collections::HashMap, time::Duration};

use futures_util::{StreamExt, stream};

use crate::{
    domain::UserId,
    store::{
        StoreError,
        redis::{RedisPool, keys, scripts},
    },
};

/// How many sessions of a dead node one sweep cleans at the same time: a node that held many
/// thousands must not put all of their scripts in Redis's queue at once.
const SWEEP_CONCURRENCY: usize = 64;

/// Index entries removed per command once their sessions are clean.
const UNINDEX_CHUNK: usize = 1000;

/// What one sweep of a node did.
#[derive(Debug, Default)]
pub struct Swept {
    /// The users who went offline with the node (to announce), whatever else failed.
    pub offline: Vec<UserId>,
    /// Sessions that could not be cleaned: their index entries stay, so the next sweep tries
    /// them again (cleaning a session twice is harmless).
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
    pub(super) fn new(pool: RedisPool, ttl: Duration, session_ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            session_ttl,
        }
    }

    /// Refreshes `node`'s liveness, and lists it (again, if a sweep had unlisted it).
    pub async fn heartbeat(&self, node: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let ttl = self.ttl.as_secs().max(1);
        // Alive first, listed second: a sweep takes a node that is listed and not alive for
        // dead, so listing it first would let a sweep running between the two commands sweep a
        // node that is starting.
        let alive = redis::cmd("SET")
            .arg(keys::node_alive(node))
            .arg(1)
            .arg("EX")
            .arg(ttl)
            .to_owned();
        conn.each::<redis::Value>(vec![alive]).await?;
        let listed = redis::cmd("SADD").arg(keys::NODES).arg(node).to_owned();
        conn.each::<redis::Value>(vec![listed]).await?;
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

    /// Removes `node`'s fields from every session in its index, then the index entries of the
    /// sessions cleaned (only those read: an entry written meanwhile stays, for the next
    /// sweep or its live owner's refresh). Returns the users who went offline (to announce),
    /// also when some sessions failed. Safe to run on several nodes at once.
    pub async fn sweep(&self, node: &str) -> Result<Swept, StoreError> {
        let conn = self.pool.get().await?;
        let index = keys::node_sockets(node);
        let entries = super::read_index(&conn, &index).await?;
        let mut by_session: HashMap<String, Vec<String>> = HashMap::new();
        for (socket, session) in entries {
            by_session.entry(session).or_default().push(socket);
        }
        let prefix = keys::node_socket_fields(node);
        // Each call owns what it sends (the stream outlives the borrows a closure would hold).
        let calls: Vec<_> = by_session
            .into_iter()
            .map(|(session, sockets)| {
                let mut conn = conn.clone();
                let mut call = scripts::SESSION_SWEEP.key(keys::session_raw(&session));
                call.arg(&prefix).arg(self.session_ttl.as_secs());
                async move {
                    (
                        call.invoke_async::<Option<String>>(&mut conn).await,
                        sockets,
                    )
                }
            })
            .collect();
        let mut results = stream::iter(calls).buffer_unordered(SWEEP_CONCURRENCY);
        let (mut swept, mut clean) = (Swept::default(), Vec::new());
        while let Some((result, sockets)) = results.next().await {
            match result {
                Ok(offline) => {
                    swept.offline.extend(offline.map(UserId::from_stored));
                    clean.extend(sockets);
                }
                Err(err) => {
                    swept.failed += 1;
                    swept.error.get_or_insert(err.into());
                }
            }
        }
        // Entries left in the index are swept again next time (finding nothing to remove).
        for chunk in clean.chunks(UNINDEX_CHUNK) {
            let cmd = redis::cmd("HDEL").arg(&index).arg(chunk).to_owned();
            if let Err(err) = conn.each::<redis::Value>(vec![cmd]).await {
                swept.failed += chunk.len();
                swept.error.get_or_insert(err);
            }
        }
        Ok(swept)
    }

    /// Unlists a dead node whose index is empty (every entry swept). A node swept while alive
    /// lists itself again at its next heartbeat.
    pub async fn forget_if_clean(&self, node: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let left: u64 = redis::cmd("HLEN")
            .arg(keys::node_sockets(node))
            .query_async(&mut conn)
            .await?;
        if left == 0 {
            let cmd = redis::cmd("SREM").arg(keys::NODES).arg(node).to_owned();
            conn.each::<redis::Value>(vec![cmd]).await?;
        }
        Ok(())
    }

    /// Removes the fields starting with `prefix` from one session (raw ID); returns the user
    /// when that took it offline (to announce).
    pub(super) async fn sweep_session(
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
    /// handshake wrote after that, and unlists it once nothing is left.
    pub async fn retire(&self, node: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let cmd = redis::cmd("DEL").arg(keys::node_alive(node)).to_owned();
        conn.each::<redis::Value>(vec![cmd]).await?;
        Ok(())
    }
}
