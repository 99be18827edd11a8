//! The Redis data layout is exactly docs/protocol.md's: keys, fields, encodings, TTLs.

use std::collections::HashMap;

use privmsg::settings::UsersScope;
use redis::AsyncCommands;
use serde_json::Value;

use crate::helpers::{TestClient, TestRedis, eventually, spawn_app, spawn_app_with, test_settings};

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

    let ack = alice.send_to(&bob.user_id, "stored?").await;

    let mut conn = redis.conn().await;
    for user in [&alice.user_id, &bob.user_id] {
        assert_eq!(redis.history(user).await, [ack["message"].clone()]);
        let ttl: i64 = conn.ttl(format!("messages:{user}")).await.unwrap();
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
        alice.send_to(&bob.user_id, &format!("m{i}")).await;
    }

    let contents: Vec<Value> = redis
        .history(&bob.user_id)
        .await
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(contents, ["m2", "m3", "m4"]);
    let mut conn = redis.conn().await;
    let ttl: i64 = conn.ttl(format!("messages:{}", bob.user_id)).await.unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
    let ttl: i64 = conn
        .ttl(format!("session:{}", alice.session_id))
        .await
        .unwrap();
    assert!((290..=300).contains(&ttl), "{ttl}");
}

crate::on_standalone_and_cluster!(a_message_is_a_json_string_in_both_users_lists_with_a_day_of_ttl,);

/// A message refused because one history cannot take it (here a key of another type) takes
/// nothing from the other history, even a full one whose push would have trimmed it: its
/// oldest message stays.
async fn a_refused_message_takes_nothing_from_a_full_history(redis: TestRedis, scope: UsersScope) {
    let mut settings = test_settings(&redis);
    settings.history_cap = 3;
    settings.users_scope = scope;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    for i in 0..3 {
        alice.send_to(&carol.user_id, &format!("m{i}")).await;
    }
    redis.break_history(&bob.user_id).await;

    let refused = alice.send_to(&bob.user_id, "refused").await;

    assert_eq!(
        refused["error"], "storage unavailable, message not sent",
        "{refused}"
    );
    let contents = async || -> Vec<Value> {
        let history = redis.history(&alice.user_id).await;
        history.iter().map(|m| m["content"].clone()).collect()
    };
    // On a cluster the refused message is removed from Alice's history, and what its trim
    // dropped put back, after the refusal: waited for, with the whole history as the condition.
    eventually(
        async || contents().await == ["m0", "m1", "m2"],
        "Alice's history as before the refused message",
    )
    .await;
}

async fn in_the_all_scope_a_refused_message_takes_nothing_from_a_full_history(redis: TestRedis) {
    a_refused_message_takes_nothing_from_a_full_history(redis, UsersScope::All).await;
}

async fn in_the_contacts_scope_a_refused_message_takes_nothing_from_a_full_history(
    redis: TestRedis,
) {
    a_refused_message_takes_nothing_from_a_full_history(redis, UsersScope::Contacts).await;
}

crate::on_standalone_and_cluster!(
    in_the_all_scope_a_refused_message_takes_nothing_from_a_full_history,
    in_the_contacts_scope_a_refused_message_takes_nothing_from_a_full_history,
);
