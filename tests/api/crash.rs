//! A node that dies without draining (SIGKILL): the survivors, or its successor, mark its
//! users offline and announce it, instead of leaving them "online" until their session expires.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{NodeProcess, TestClient, TestRedis, spawn_app_with, test_settings};

/// Liveness TTL for these tests, in seconds: short so that they run quickly.
const NODE_TTL: &str = "3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_a_killed_node_are_announced_offline_by_the_survivors() {
    let redis = TestRedis::start().await;
    let mut crashing = NodeProcess::start(&redis, &[("NODE_TTL_SECS", NODE_TTL)]).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    let survivor = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&survivor, "watcher").await;
    let alice = TestClient::join(&crashing, "alice").await;
    // Bob has another tab on the survivor: he must stay online.
    let bob = TestClient::join(&crashing, "bob").await;
    let _bob_tab = TestClient::join_with(&survivor, json!({ "sessionID": bob.session_id })).await;

    crashing.kill().await;

    let gone = tokio::time::timeout(
        Duration::from_secs(30),
        watcher.client.expect("user disconnected"),
    )
    .await
    .expect("announced within 30 s");
    assert_eq!(gone, json!(alice.user_id));
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("false")
    );
    assert_eq!(
        redis.connected(&bob.session_id).await.as_deref(),
        Some("true")
    );
    watcher.client.expect_none("user disconnected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_repairs_what_its_crashed_predecessor_left() {
    let redis = TestRedis::start().await;
    let env = [("NODE_TTL_SECS", NODE_TTL)];
    let mut first = NodeProcess::start(&redis, &env).await;
    let alice = TestClient::join(&first, "alice").await;
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("true")
    );

    first.kill().await;
    let _successor = NodeProcess::start(&redis, &env).await;

    for _ in 0..300 {
        if redis.connected(&alice.session_id).await.as_deref() == Some("false") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the successor never marked alice offline");
}
