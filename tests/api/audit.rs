//! The owner's refresh (`socket/refresh.rs`): every `NODE_TTL_SECS` each node makes its
//! presence entries say what its sockets are, so that a lost cleanup heals within one
//! interval whatever happened: a leave Redis could not take, a node swept while alive.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    NodeProcess, TestClient, TestRedis, eventually, eventually_within, metric, spawn_app_with,
    test_settings,
};

/// The nodes' liveness and refresh interval in these tests, in seconds.
const NODE_TTL: u64 = 3;
/// How long a heal may take: one interval, with a wide margin for a busy machine.
const HEAL: Duration = Duration::from_secs(20);

const DROPPED: &str = "privmsg_presence_repairs_total{change=\"dropped\"}";
const RESTORED: &str = "privmsg_presence_repairs_total{change=\"restored\"}";

async fn ready_status(url: &str) -> u16 {
    reqwest::get(format!("{url}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Alice closes her tab while Redis is down: her leave cannot be written, and nothing keeps
/// it. Once Redis is back, the node's refresh finds her entry that no socket of it holds,
/// drops it and announces her offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_that_failed_while_redis_was_down_heals_within_one_refresh() {
    let mut redis = TestRedis::start_durable().await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = NODE_TTL;
    let node = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&node, "watcher").await;
    let alice = TestClient::join(&node, "alice").await;
    redis.stop().await;
    eventually(
        async || ready_status(&node.url()).await == 503,
        "the node to see Redis gone",
    )
    .await;

    alice.client.disconnect().await;
    redis.restart().await;

    let gone = watcher
        .client
        .expect_within("user disconnected", HEAL)
        .await;
    assert_eq!(gone, json!(alice.user_id));
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("false")
    );
    assert_eq!(redis.sockets(&alice.session_id).await, 0);
    // The refresh did it, not a leave that went through late.
    assert!(metric(&node, DROPPED).await >= 1);
}

/// An entry the live node holds no socket for (as a leave whose write was lost leaves it)
/// is dropped by that node's refresh and the user announced offline; the entry of a socket
/// the node does hold is left alone.
async fn an_entry_its_live_node_holds_no_socket_for_is_dropped_by_the_refresh(redis: TestRedis) {
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = NODE_TTL;
    let node = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&node, "watcher").await;
    let bob = TestClient::join(&node, "bob").await;
    let alice = TestClient::join(&node, "alice").await;
    let node_id = redis.node_of(&alice.session_id).await;
    let lost = "NoSuchSocket0000";
    let writes = vec![
        redis::cmd("HSET")
            .arg(format!("session:{}", alice.session_id))
            .arg(format!("socket:{node_id}:{lost}"))
            .arg(1)
            .to_owned(),
        redis::cmd("HSET")
            .arg(format!("privmsg:node:{node_id}:sockets"))
            .arg(lost)
            .arg(&alice.session_id)
            .to_owned(),
    ];
    redis
        .conn()
        .await
        .each::<redis::Value>(writes)
        .await
        .expect("HSET");

    alice.client.disconnect().await;

    let gone = watcher
        .client
        .expect_within("user disconnected", HEAL)
        .await;
    assert_eq!(gone, json!(alice.user_id));
    assert_eq!(redis.sockets(&alice.session_id).await, 0);
    assert!(metric(&node, DROPPED).await >= 1);
    assert_eq!(redis.sockets(&bob.session_id).await, 1, "a live socket's");
    assert_eq!(
        redis.connected(&bob.session_id).await.as_deref(),
        Some("true")
    );
}

/// A node frozen (SIGSTOP) for longer than its liveness is swept by its peer, which
/// announces its users offline; once it runs again, its refresh writes its sockets' entries
/// back and announces them online, though no client did anything.
async fn a_node_swept_while_alive_announces_its_users_online_again(redis: TestRedis) {
    let ttl = NODE_TTL.to_string();
    let mut frozen = NodeProcess::start(&redis, &[("NODE_TTL_SECS", ttl.as_str())]).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = NODE_TTL;
    let survivor = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&survivor, "watcher").await;
    let alice = TestClient::join(&frozen, "alice").await;
    watcher.client.expect("user connected").await;

    frozen.pause().await;
    let gone = watcher
        .client
        .expect_within("user disconnected", HEAL)
        .await;
    assert_eq!(gone, json!(alice.user_id));
    frozen.resume().await;

    let back = watcher.client.expect_within("user connected", HEAL).await;
    assert_eq!(back["userID"], json!(alice.user_id));
    eventually_within(
        HEAL,
        async || redis.connected(&alice.session_id).await.as_deref() == Some("true"),
        "alice's session connected again",
    )
    .await;
    assert_eq!(redis.sockets(&alice.session_id).await, 1);
    assert!(metric(&frozen, RESTORED).await >= 1);
}

crate::on_standalone_and_cluster!(
    an_entry_its_live_node_holds_no_socket_for_is_dropped_by_the_refresh,
    a_node_swept_while_alive_announces_its_users_online_again,
);
