//! Presence across nodes: a user is offline only when its last socket anywhere is gone.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    Connected, TestApp, TestClient, TestRedis, eventually, eventually_within, spawn_app,
};

/// `watcher` is told the user went offline, and its session says so.
async fn assert_went_offline(
    watcher: &mut TestClient,
    redis: &TestRedis,
    user: &str,
    session: &str,
) {
    assert_eq!(watcher.expect("user disconnected").await, json!(user));
    assert_eq!(redis.connected(session).await.as_deref(), Some("false"));
}

/// Waits until the server has processed the departures of a session's closed sockets: only
/// `open` of them are left.
async fn wait_for_sockets(redis: &TestRedis, session: &str, open: usize) {
    eventually(
        async || {
            let sockets = redis.sockets(session).await;
            if sockets == open {
                Ok(())
            } else {
                Err(sockets)
            }
        },
        &format!("{open} socket(s) left in session {session}"),
    )
    .await;
}

/// Two nodes; a watcher on node 1; alice with one tab on node 1 and one on node 2.
struct TwoTabs {
    node1: TestApp,
    _node2: TestApp,
    watcher: Connected,
    alice: Connected,
    tab2: Connected,
}

async fn alice_with_a_tab_on_each_node(redis: &TestRedis) -> TwoTabs {
    let (node1, node2) = (spawn_app(redis).await, spawn_app(redis).await);
    let watcher = TestClient::join(&node1, "watcher").await;
    let alice = TestClient::join(&node1, "alice").await;
    let tab2 = TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    TwoTabs {
        node1,
        _node2: node2,
        watcher,
        alice,
        tab2,
    }
}

async fn closing_one_of_two_tabs_on_different_nodes_announces_nothing(redis: TestRedis) {
    let mut tabs = alice_with_a_tab_on_each_node(&redis).await;
    let bob = TestClient::join(&tabs.node1, "bob").await;

    tabs.alice.client.disconnect().await;

    wait_for_sockets(&redis, &tabs.alice.session_id, 1).await;
    assert_eq!(
        redis.connected(&tabs.tab2.session_id).await.as_deref(),
        Some("true")
    );
    // Bob leaves the same node after alice's tab was processed: the first departure the
    // watcher hears of must be his, not alice's.
    bob.client.disconnect().await;
    let first = tabs.watcher.client.expect("user disconnected").await;
    assert_eq!(first, json!(bob.user_id), "alice was announced offline");
}

async fn closing_the_last_tab_announces_the_user_id_and_stores_connected_false(redis: TestRedis) {
    let mut tabs = alice_with_a_tab_on_each_node(&redis).await;

    tabs.alice.client.disconnect().await;
    tabs.tab2.client.disconnect().await;

    assert_went_offline(
        &mut tabs.watcher.client,
        &redis,
        &tabs.alice.user_id,
        &tabs.alice.session_id,
    )
    .await;
}

async fn a_graceful_shutdown_marks_its_users_offline_on_the_other_nodes(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut watcher = TestClient::join(&node2, "watcher").await;
    let alice = TestClient::join(&node1, "alice").await;

    node1.stop().await;

    assert_went_offline(
        &mut watcher.client,
        &redis,
        &alice.user_id,
        &alice.session_id,
    )
    .await;
}

/// A socket of the draining node that its drain does not know of (one that finished its
/// handshake after the drain's snapshot, or whose departure failed) is swept by the node
/// itself as it leaves: the user goes offline, no field is left, and a survivor unlists the
/// node once it finds nothing more to clean.
async fn a_drain_that_misses_a_socket_still_takes_its_user_offline(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut watcher = TestClient::join(&node2, "watcher").await;
    let alice = TestClient::join(&node1, "alice").await;
    let session = format!("session:{}", alice.session_id);
    let mut conn = redis.conn().await;
    let node = redis.node_of(&alice.session_id).await;
    redis::cmd("HSET")
        .arg(&session)
        .arg(format!("socket:{node}:not-in-the-drain"))
        .arg(1)
        .query_async::<()>(&mut conn)
        .await
        .expect("HSET");

    node1.stop().await;

    assert_went_offline(
        &mut watcher.client,
        &redis,
        &alice.user_id,
        &alice.session_id,
    )
    .await;
    assert_eq!(redis.sockets(&alice.session_id).await, 0);
    eventually_within(
        Duration::from_secs(30),
        async || {
            let nodes: Vec<String> = redis::cmd("SMEMBERS")
                .arg("privmsg:nodes")
                .query_async(&mut redis.conn().await)
                .await
                .expect("SMEMBERS");
            if nodes.contains(&node) {
                Err(format!("node 1 still listed: {nodes:?}"))
            } else {
                Ok(())
            }
        },
        "a survivor to unlist the node that left",
    )
    .await;
}

async fn a_user_coming_back_is_announced_online_again(redis: TestRedis) {
    let app = spawn_app(&redis).await;
    let mut watcher = TestClient::join(&app, "watcher").await;
    let alice = TestClient::join(&app, "alice").await;
    watcher.client.expect("user connected").await;
    alice.client.disconnect().await;
    watcher.client.expect("user disconnected").await;

    let back = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;

    let event = watcher.client.expect("user connected").await;
    assert_eq!(event["userID"], back.user_id.as_str());
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("true")
    );
}

/// A tab opening on one node while another closes on the other, at the same moment, many
/// times: the user must end up online (a tab is open); then both closing at once: offline.
async fn simultaneous_opens_and_closes_on_two_nodes_leave_the_right_status(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let auth = json!({ "sessionID": alice.session_id });
    let mut open = alice.client;
    for round in 0..10 {
        // The open tab is on one node; the new one opens on the other.
        let other_node = if round % 2 == 0 { &node2 } else { &node1 };
        let (next, ()) = tokio::join!(
            TestClient::join_with(other_node, auth.clone()),
            open.disconnect()
        );
        open = next.client;
        wait_for_sockets(&redis, &alice.session_id, 1).await;
        assert_eq!(
            redis.connected(&alice.session_id).await.as_deref(),
            Some("true"),
            "round {round}"
        );
    }

    let last = TestClient::join_with(&node2, auth).await;
    tokio::join!(open.disconnect(), last.client.disconnect());

    wait_for_sockets(&redis, &alice.session_id, 0).await;
    assert_eq!(
        redis.connected(&alice.session_id).await.as_deref(),
        Some("false")
    );
}

crate::on_standalone_and_cluster!(
    simultaneous_opens_and_closes_on_two_nodes_leave_the_right_status,
    closing_one_of_two_tabs_on_different_nodes_announces_nothing,
    closing_the_last_tab_announces_the_user_id_and_stores_connected_false,
    a_graceful_shutdown_marks_its_users_offline_on_the_other_nodes,
    a_drain_that_misses_a_socket_still_takes_its_user_offline,
    a_user_coming_back_is_announced_online_again,
);
