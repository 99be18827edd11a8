//! A node that dies without draining (SIGKILL): the survivors, or its successor, mark its
//! users offline and announce it, instead of leaving them "online" until their session expires.

use std::time::Duration;

use redis::AsyncCommands;
use rust_socketio::TransportType;
use serde_json::{Value, json};

use crate::helpers::{NodeProcess, TestClient, TestRedis, spawn_app_with, test_settings};

/// Liveness TTL for these tests, in seconds: short so that they run quickly.
const NODE_TTL: &str = "3";

async fn join_process(node: &NodeProcess, username: &str) -> (TestClient, Value) {
    let auth = json!({ "username": username });
    let mut client = TestClient::connect_url(node.url(), auth, TransportType::Websocket).await;
    let session = client.expect("session").await;
    client.expect("users").await;
    (client, session)
}

async fn connected_field(redis: &TestRedis, session: &Value) -> Option<String> {
    let key = format!("session:{}", session["sessionID"].as_str().unwrap());
    redis.conn().await.hget(key, "connected").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_a_killed_node_are_announced_offline_by_the_survivors() {
    let redis = TestRedis::start().await;
    let mut crashing = NodeProcess::start(&redis, &[("NODE_TTL_SECS", NODE_TTL)]).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    let survivor = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&survivor, "watcher").await;
    let (_alice, alice) = join_process(&crashing, "alice").await;
    // Bob has another tab on the survivor: he must stay online.
    let (_bob, bob) = join_process(&crashing, "bob").await;
    let _bob_tab = TestClient::join_with(&survivor, json!({ "sessionID": bob["sessionID"] })).await;

    crashing.kill().await;

    let gone = tokio::time::timeout(
        Duration::from_secs(30),
        watcher.client.expect("user disconnected"),
    )
    .await
    .expect("announced within 30 s");
    assert_eq!(gone, alice["userID"]);
    assert_eq!(
        connected_field(&redis, &alice).await.as_deref(),
        Some("false")
    );
    assert_eq!(connected_field(&redis, &bob).await.as_deref(), Some("true"));
    watcher.client.expect_none("user disconnected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_repairs_what_its_crashed_predecessor_left() {
    let redis = TestRedis::start().await;
    let env = [("NODE_TTL_SECS", NODE_TTL)];
    let mut first = NodeProcess::start(&redis, &env).await;
    let (_alice, alice) = join_process(&first, "alice").await;
    assert_eq!(
        connected_field(&redis, &alice).await.as_deref(),
        Some("true")
    );

    first.kill().await;
    let _successor = NodeProcess::start(&redis, &env).await;

    for _ in 0..300 {
        if connected_field(&redis, &alice).await.as_deref() == Some("false") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the successor never marked alice offline");
}
