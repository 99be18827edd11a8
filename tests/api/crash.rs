//! A node that dies without draining (SIGKILL): the survivors, or its successor, mark its
//! users offline and announce it, instead of leaving them "online" until their session expires.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    NodeProcess, TestClient, TestRedis, eventually_within, metric, spawn_app, spawn_app_with,
    test_settings,
};

/// Liveness TTL for these tests, in seconds: short so that they run quickly.
const NODE_TTL: &str = "3";
/// How long the cleanup may take: the TTL, plus a sweep interval, with a wide margin.
const CLEANUP: Duration = Duration::from_secs(30);
/// The contract for a killed node: its users offline within `NODE_TTL_SECS` plus a few
/// seconds (a sweep interval, a third of the TTL, and the sweep's own work).
const OFFLINE_BOUND: Duration = Duration::from_secs(3 + 7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_a_killed_node_are_announced_offline_by_the_survivors() {
    let redis = TestRedis::start().await;
    let mut crashing = NodeProcess::start(&redis, &[("NODE_TTL_SECS", NODE_TTL)]).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    let survivor = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&survivor, "watcher").await;
    let carol = TestClient::join(&survivor, "carol").await;
    let alice = TestClient::join(&crashing, "alice").await;
    // Bob has another tab on the survivor: he must stay online.
    let bob = TestClient::join(&crashing, "bob").await;
    let _bob_tab = TestClient::join_with(&survivor, json!({ "sessionID": bob.session_id })).await;

    crashing.kill().await;

    let gone = watcher
        .client
        .expect_within("user disconnected", OFFLINE_BOUND)
        .await;
    assert_eq!(gone, json!(alice.user_id));
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("false")
    );
    assert_eq!(
        redis.connected(&bob.session_id).await.as_deref(),
        Some("true")
    );
    // The sweep that announced alice is over (it wrote before it announced): carol leaving
    // now is the next departure the watcher hears of, not bob.
    carol.client.disconnect().await;
    let next = watcher.client.expect("user disconnected").await;
    assert_eq!(next, json!(carol.user_id), "bob was announced offline");
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

    eventually_within(
        CLEANUP,
        async || redis.connected(&alice.session_id).await.as_deref() == Some("false"),
        "the successor to mark alice offline",
    )
    .await;
}

/// One session the sweep cannot clean (here a key that is no longer a hash) neither hides the
/// others' departures nor lets the dead node be forgotten: it stays listed, and is forgotten
/// by the first sweep after that session can be cleaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_sweep_cannot_clean_does_not_hide_the_other_departures() {
    let redis = TestRedis::start().await;
    let mut crashing = NodeProcess::start(&redis, &[("NODE_TTL_SECS", NODE_TTL)]).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    let survivor = spawn_app_with(settings).await;
    let mut watcher = TestClient::join(&survivor, "watcher").await;
    let alice = TestClient::join(&crashing, "alice").await;
    let bob = TestClient::join(&crashing, "bob").await;
    let bobs_session = format!("session:{}", bob.session_id);
    let mut conn = redis.conn().await;
    redis::cmd("SET")
        .arg(&bobs_session)
        .arg("not a hash")
        .query_async::<()>(&mut conn)
        .await
        .expect("SET");
    let listed = async |conn: &mut privmsg::store::Conn| {
        redis::cmd("SCARD")
            .arg("privmsg:nodes")
            .query_async::<u64>(conn)
            .await
            .expect("SCARD")
    };
    assert_eq!(listed(&mut conn).await, 2);

    crashing.kill().await;

    let gone = watcher
        .client
        .expect_within("user disconnected", CLEANUP)
        .await;
    assert_eq!(gone, json!(alice.user_id));
    assert_eq!(listed(&mut conn).await, 2, "forgotten with a session left");
    assert!(metric(&survivor, "privmsg_sweep_failures_total").await >= 1);
    redis::cmd("DEL")
        .arg(&bobs_session)
        .query_async::<()>(&mut conn)
        .await
        .expect("DEL");
    eventually_within(
        CLEANUP,
        async || listed(&mut redis.conn().await).await == 1,
        "the dead node to be forgotten once every session is clean",
    )
    .await;
}

/// A node's index of its sockets (what a survivor sweeps if it dies) loses a socket once it
/// leaves, whether the user went offline or stays online on another node: the index is as
/// long as what the node holds, not as all it ever held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_forgets_the_sessions_it_no_longer_holds() {
    let redis = TestRedis::start().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut watcher = TestClient::join(&node2, "watcher").await;
    let alice = TestClient::join(&node1, "alice").await;
    let bob = TestClient::join(&node1, "bob").await;
    let _bob_elsewhere =
        TestClient::join_with(&node2, json!({ "sessionID": bob.session_id })).await;
    let carol = TestClient::join(&node1, "carol").await;
    let mut conn = redis.conn().await;
    let node = redis.node_of(&carol.session_id).await;
    let held = async |conn: &mut privmsg::store::Conn| {
        let mut sessions: Vec<String> = redis::cmd("HVALS")
            .arg(format!("privmsg:node:{node}:sockets"))
            .query_async(conn)
            .await
            .expect("SMEMBERS");
        sessions.sort();
        sessions
    };
    let mut all = vec![
        alice.session_id.clone(),
        bob.session_id.clone(),
        carol.session_id.clone(),
    ];
    all.sort();
    assert_eq!(held(&mut conn).await, all);

    alice.client.disconnect().await;
    bob.client.disconnect().await;
    assert_eq!(
        watcher.client.expect("user disconnected").await,
        json!(alice.user_id)
    );
    // Bob is still online on node 2: no announcement; his departure from node 1 is done once
    // his socket there is gone from his session.
    eventually_within(
        CLEANUP,
        async || redis.sockets(&bob.session_id).await == 1,
        "bob's socket on node 1 to be forgotten",
    )
    .await;

    eventually_within(
        CLEANUP,
        async || held(&mut redis.conn().await).await == [carol.session_id.clone()],
        "node 1 to hold carol's session only",
    )
    .await;
}

/// A node busy with long upkeep (here its share of sweeping a dead node that held 300,000
/// sessions, which takes far longer than the liveness TTL) keeps its heartbeat: no peer takes
/// it for dead, so none of its users is announced offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sweeping_for_longer_than_its_ttl_is_not_taken_for_dead() {
    let redis = TestRedis::start().await;
    let settings = || {
        let mut settings = test_settings(&redis);
        settings.node_ttl_secs = 3;
        settings
    };
    let (node1, node2) = (
        spawn_app_with(settings()).await,
        spawn_app_with(settings()).await,
    );
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut conn = redis.conn().await;
    for chunk in 0..30 {
        let mut add = redis::cmd("HSET");
        add.arg("privmsg:node:ghost:sockets");
        for i in 0..10_000 {
            add.arg(format!("ghost-socket-{chunk}-{i}"))
                .arg(format!("ghost-session-{chunk}-{i}"));
        }
        add.query_async::<()>(&mut conn).await.expect("SADD");
    }
    redis::cmd("SADD")
        .arg("privmsg:nodes")
        .arg("ghost")
        .query_async::<()>(&mut conn)
        .await
        .expect("SADD");

    eventually_within(
        Duration::from_secs(180),
        async || {
            let listed: bool = redis::cmd("SISMEMBER")
                .arg("privmsg:nodes")
                .arg("ghost")
                .query_async(&mut redis.conn().await)
                .await
                .expect("SISMEMBER");
            !listed
        },
        "the ghost node swept and forgotten",
    )
    .await;

    alice.send_to(&bob.user_id, "still here").await;
    bob.send_to(&alice.user_id, "me too").await;
    let (alice_id, bob_id) = (alice.user_id.clone(), bob.user_id.clone());
    for (client, other) in [(&mut alice, bob_id), (&mut bob, alice_id)] {
        let heard = client
            .client
            .expect_none_before("user disconnected", "private message")
            .await;
        assert_eq!(heard["from"], json!(other));
    }
}
