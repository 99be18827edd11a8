//! Everything in Redis that names a string (a userID, a sessionID): every key, on every master
//! of a cluster, by name and by content. For erasure: what is left of a user, key by key.

use redis::AsyncCommands;

use super::TestRedis;

/// One place a string was found: a key's name, or one element of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub key: String,
    /// The element that holds it (a list entry, a set or sorted-set member, `field=value` of a
    /// hash, a string's value); `None` when only the key's name does.
    pub element: Option<String>,
}

impl TestRedis {
    /// Every key or element that contains `needle`.
    pub async fn traces_of(&self, needle: &str) -> Vec<Trace> {
        let mut conn = self.conn().await;
        let keys = conn.scan_keys("*", 1000).await.expect("SCAN");
        let mut traces = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("TYPE");
            let elements: Vec<String> = match kind.as_str() {
                "string" => vec![conn.get(&key).await.expect("GET")],
                "list" => conn.lrange(&key, 0, -1).await.expect("LRANGE"),
                "set" => conn.smembers(&key).await.expect("SMEMBERS"),
                "zset" => conn.zrange(&key, 0, -1).await.expect("ZRANGE"),
                "hash" => {
                    let fields: Vec<(String, String)> = conn.hgetall(&key).await.expect("HGETALL");
                    fields
                        .into_iter()
                        .map(|(f, v)| format!("{f}={v}"))
                        .collect()
                }
                _ => Vec::new(),
            };
            if key.contains(needle) {
                traces.push(Trace {
                    key: key.clone(),
                    element: None,
                });
            }
            traces.extend(
                elements
                    .into_iter()
                    .filter(|element| element.contains(needle))
                    .map(|element| Trace {
                        key: key.clone(),
                        element: Some(element),
                    }),
            );
        }
        traces
    }
}
