//! What is in Redis, in docs/protocol.md's layout: written to arrange a test, read back to check
//! what the server stored; so that a test says what it checks, not how a key is built.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde_json::Value;

use super::TestRedis;

impl TestRedis {
    /// Stores an offline session as another server (the Node.js one, a node gone since)
    /// left it: the three contract fields, no socket.
    pub async fn store_offline_session(&self, session_id: &str, user_id: &str, username: &str) {
        let fields = [
            ("userID", user_id),
            ("username", username),
            ("connected", "false"),
        ];
        self.conn()
            .await
            .hset_multiple::<_, _, _, ()>(format!("session:{session_id}"), &fields)
            .await
            .expect("HSET session");
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> bool {
        self.conn().await.exists(key).await.expect("EXISTS")
    }

    /// `messages:{userID}`, oldest first, each parsed (so each must be a JSON string).
    pub async fn history(&self, user_id: &str) -> Vec<Value> {
        let stored: Vec<String> = self
            .conn()
            .await
            .lrange(format!("messages:{user_id}"), 0, -1)
            .await
            .expect("LRANGE messages");
        stored
            .iter()
            .map(|m| serde_json::from_str(m).unwrap_or_else(|e| panic!("{e}: {m}")))
            .collect()
    }

    /// Makes `user_id`'s history a string, so that Redis refuses to append to it (WRONGTYPE).
    pub async fn break_history(&self, user_id: &str) {
        self.conn()
            .await
            .set::<_, _, ()>(format!("messages:{user_id}"), "not a list")
            .await
            .expect("SET messages");
    }

    /// The ids of the messages in `user_id`'s history, oldest first.
    pub async fn history_ids(&self, user_id: &str) -> Vec<String> {
        self.history(user_id)
            .await
            .iter()
            .map(|m| {
                m["id"]
                    .as_str()
                    .expect("a stored message has an id")
                    .to_owned()
            })
            .collect()
    }

    /// The `connected` field of `session:{sessionID}` ("true", "false", or none).
    pub async fn connected(&self, session_id: &str) -> Option<String> {
        self.conn()
            .await
            .hget(format!("session:{session_id}"), "connected")
            .await
            .expect("HGET connected")
    }

    /// How many sockets the session has on any node (its `socket:{node}:{socket}` fields):
    /// when this drops, the server has finished processing a departure.
    pub async fn sockets(&self, session_id: &str) -> usize {
        let fields = self.session_fields(session_id).await;
        fields.keys().filter(|f| f.starts_with("socket:")).count()
    }

    async fn session_fields(&self, session_id: &str) -> HashMap<String, String> {
        self.conn()
            .await
            .hgetall(format!("session:{session_id}"))
            .await
            .expect("HGETALL session")
    }

    /// The node that wrote the first presence field of a session (the ID in
    /// `socket:{node}:{socket}`), for tests that look at that node's keys.
    pub async fn node_of(&self, session_id: &str) -> String {
        self.session_fields(session_id)
            .await
            .keys()
            .find_map(|f| f.strip_prefix("socket:")?.split(':').next())
            .expect("a presence field names its node")
            .to_owned()
    }
}

/// The index of the conversation between `a` and `b`: `privmsg:conversation:{low}:{high}`.
pub fn conversation_key(a: &str, b: &str) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("privmsg:conversation:{low}:{high}")
}
