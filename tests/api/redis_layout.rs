//! The Redis data layout is exactly PROTOCOL.md's: keys, fields, encodings, TTLs.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::helpers::{TestClient, TestRedis, spawn_app, spawn_app_with, test_settings};

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_a_hash_with_user_id_username_connected_and_a_day_of_ttl() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "alice").await;

    let mut conn = redis.conn().await;
    let key = format!("session:{}", alice.session_id);
    let hash: HashMap<String, String> = conn.hgetall(&key).await.unwrap();
    assert_eq!(hash["userID"], alice.user_id);
    assert_eq!(hash["username"], "alice");
    assert_eq!(hash["connected"], "true");
    // Besides the three contract fields, only the per-socket presence fields (an extension).
    assert!(
        hash.keys().all(
            |f| ["userID", "username", "connected"].contains(&f.as_str())
                || f.starts_with("socket:")
        ),
        "{hash:?}"
    );
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((DAY - 10..=DAY).contains(&ttl), "{ttl}");
}

async fn a_message_is_a_json_string_in_both_users_lists_with_a_day_of_ttl(redis: TestRedis) {
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;

    let ack = alice
        .client
        .send(json!({ "content": "stored?", "to": bob.user_id }))
        .await;

    let mut conn = redis.conn().await;
    for user in [&alice.user_id, &bob.user_id] {
        let key = format!("messages:{user}");
        let stored: Vec<String> = conn.lrange(&key, 0, -1).await.unwrap();
        assert_eq!(stored.len(), 1);
        let message: Value = serde_json::from_str(&stored[0]).unwrap();
        assert_eq!(message, ack["message"]);
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!((DAY - 10..=DAY).contains(&ttl), "{ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_are_capped_oldest_first_and_ttls_follow_the_settings() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.history_cap = 3;
    settings.message_ttl_secs = 600;
    settings.session_ttl_secs = 300;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;

    for i in 0..5 {
        alice
            .client
            .send(json!({ "content": format!("m{i}"), "to": bob.user_id }))
            .await;
    }

    let mut conn = redis.conn().await;
    let key = format!("messages:{}", bob.user_id);
    let stored: Vec<String> = conn.lrange(&key, 0, -1).await.unwrap();
    let contents: Vec<String> = stored
        .iter()
        .map(|s| {
            serde_json::from_str::<Value>(s).unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(contents, ["m2", "m3", "m4"]);
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
    let ttl: i64 = conn
        .ttl(format!("session:{}", alice.session_id))
        .await
        .unwrap();
    assert!((290..=300).contains(&ttl), "{ttl}");
}

crate::on_standalone_and_cluster!(a_message_is_a_json_string_in_both_users_lists_with_a_day_of_ttl,);
