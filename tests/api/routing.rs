//! Routing by user: a private message reaches only the nodes that hold a socket of its
//! recipient or of its sender, never every node, and never twice.

use serde_json::json;

use crate::{
    helpers::{
        Connected, TestApp, TestClient, TestRedis, eventually, spawn_app, user_channel_messages,
    },
    on_standalone_and_cluster,
};

async fn a_node_holding_neither_user_receives_none_of_their_messages(redis: TestRedis) {
    let (node1, node2, node3) = (
        spawn_app(&redis).await,
        spawn_app(&redis).await,
        spawn_app(&redis).await,
    );
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut carol = TestClient::join(&node3, "carol").await;
    let before = user_channel_messages(&node3).await;

    for i in 0..20 {
        let ack = alice
            .client
            .send(json!({ "content": format!("m{i}"), "to": bob.user_id }))
            .await;
        assert!(ack.get("message").is_some(), "{ack}");
    }
    for _ in 0..20 {
        bob.client.expect("private message").await;
    }
    // Published after the twenty, on the same connection: had node 3 received those, they
    // would have reached it before this one.
    alice
        .client
        .send(json!({ "content": "for carol", "to": carol.user_id }))
        .await;
    let to_carol = carol.client.expect("private message").await;

    assert_eq!(to_carol["content"], "for carol");
    assert_eq!(user_channel_messages(&node3).await - before, 1);
    assert!(user_channel_messages(&node2).await >= 20);
}

async fn a_node_holding_both_users_delivers_each_message_once(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut alice_tab2 =
        TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&node2, "bob").await;

    alice
        .client
        .send(json!({ "content": "once", "to": bob.user_id }))
        .await;
    alice
        .client
        .send(json!({ "content": "marker", "to": bob.user_id }))
        .await;

    for client in [&mut bob.client, &mut alice_tab2.client] {
        let first = client.expect("private message").await;
        let second = client.expect("private message").await;
        assert_eq!(
            (&first["content"], &second["content"]),
            (&json!("once"), &json!("marker"))
        );
    }
}

async fn a_message_between_users_of_one_node_still_reaches_a_tab_on_another(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node1, "bob").await;
    let mut bob_tab2 = TestClient::join_with(&node2, json!({ "sessionID": bob.session_id })).await;

    alice
        .client
        .send(json!({ "content": "both tabs", "to": bob.user_id }))
        .await;

    assert_eq!(
        bob.client.expect("private message").await["content"],
        "both tabs"
    );
    assert_eq!(
        bob_tab2.client.expect("private message").await["content"],
        "both tabs"
    );
}

/// On a standalone Redis, storing and publishing is one script: a message that cannot be
/// stored in both histories is in neither, and reaches nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_stored_in_both_histories_is_in_neither_and_reaches_nobody() {
    let redis = TestRedis::start().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let bobs_history = format!("messages:{}", bob.user_id);
    let mut conn = redis.conn().await;
    redis.break_history(&bob.user_id).await;

    let refused = alice.send_to(&bob.user_id, "lost in the middle").await;
    redis::cmd("DEL")
        .arg(&bobs_history)
        .query_async::<()>(&mut conn)
        .await
        .expect("DEL");
    let accepted = alice.send_to(&bob.user_id, "after").await;

    assert_eq!(
        refused["error"], "storage unavailable, message not sent",
        "{refused}"
    );
    assert!(accepted.get("message").is_some(), "{accepted}");
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "after"
    );
    let alices: Vec<_> = redis.history(&alice.user_id).await;
    let contents: Vec<_> = alices.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("after")]);
}

/// A node that holds the only subscription to a user's channel does not publish there: it
/// delivered to its own sockets already, and would only get its echo back. On a Redis Cluster
/// too, where each channel sits on its own master.
async fn a_node_holding_every_tab_of_both_users_receives_no_echo_of_their_messages(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node1, "bob").await;
    let carol = TestClient::join(&node2, "carol").await;
    let before = user_channel_messages(&node1).await;

    for i in 0..10 {
        let ack = alice.send_to(&bob.user_id, &format!("m{i}")).await;
        assert!(ack.get("message").is_some(), "{ack}");
    }
    let ack = alice.send_to(&carol.user_id, "to the other node").await;
    assert!(ack.get("message").is_some(), "{ack}");
    for i in 0..10 {
        assert_eq!(
            bob.client.expect("private message").await["content"],
            format!("m{i}")
        );
    }
    expect_markers_after(&carol, &mut alice, &mut bob).await;
    assert_eq!(user_channel_messages(&node1).await - before, 2);
}

/// A message from `carol` (on another node) to each of `alice` and `bob`, received: published
/// on their channels after everything before was acknowledged. A node's subscription to one
/// channel receives in Redis's order (on a cluster, one master per channel), so any echo on
/// alice's or bob's channel would have reached their node before these.
async fn expect_markers_after(carol: &Connected, alice: &mut Connected, bob: &mut Connected) {
    for user in [&mut *alice, &mut *bob] {
        let ack = carol.send_to(&user.user_id, "marker").await;
        assert!(ack.get("message").is_some(), "{ack}");
        let marker = user.client.expect("private message").await;
        assert_eq!(marker["content"], "marker");
    }
}

/// The same rule for the events no write carries: `typing` and `messages read` between two
/// users of one node are delivered by that node and published nowhere.
async fn a_node_holding_both_users_receives_no_echo_of_their_typing_or_read_marks(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node1, "bob").await;
    let carol = TestClient::join(&node2, "carol").await;
    let ack = alice.send_to(&bob.user_id, "hi").await;
    let id = ack["message"]["id"].clone();
    bob.client.expect("private message").await;
    let before = user_channel_messages(&node1).await;

    let typing = alice
        .client
        .ask("typing", json!({ "to": bob.user_id }))
        .await;
    assert_eq!(typing, json!({}));
    assert_eq!(
        bob.client.expect("typing").await,
        json!({ "from": alice.user_id })
    );
    let read = bob
        .client
        .ask(
            "messages read",
            json!({ "with": alice.user_id, "upTo": id }),
        )
        .await;
    assert_eq!(read, json!({}));
    assert_eq!(alice.client.expect("messages read").await["upTo"], id);
    expect_markers_after(&carol, &mut alice, &mut bob).await;
    assert_eq!(user_channel_messages(&node1).await - before, 2);
}

on_standalone_and_cluster!(
    a_node_holding_neither_user_receives_none_of_their_messages,
    a_node_holding_both_users_delivers_each_message_once,
    a_message_between_users_of_one_node_still_reaches_a_tab_on_another,
    a_node_holding_every_tab_of_both_users_receives_no_echo_of_their_messages,
    a_node_holding_both_users_receives_no_echo_of_their_typing_or_read_marks,
);

/// A SUBSCRIBE that Redis refuses (here an ACL that allows no user's channel) leaves the
/// user's channel wanted: the socket is let in, the node reports itself not ready, and once
/// Redis takes the subscription the socket hears other nodes again (before, the channel was
/// forgotten, and a socket of the user that arrived while it was in flight heard nothing
/// cross-node until it reconnected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscribe_is_retried_until_the_users_sockets_hear_other_nodes() {
    let redis = TestRedis::start().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut conn = redis.conn().await;
    // Every channel subscribed so far stays allowed (Redis would drop a subscriber of one
    // that is not); a new user's channel is not.
    let held: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async(&mut conn)
        .await
        .expect("PUBSUB CHANNELS");
    let mut deny = redis::cmd("ACL");
    deny.arg("SETUSER").arg("default").arg("resetchannels");
    for channel in &held {
        deny.arg(format!("&{channel}"));
    }
    deny.query_async::<()>(&mut conn)
        .await
        .expect("ACL SETUSER");

    let mut bob = TestClient::join(&node2, "bob").await;
    eventually(
        async || !ready(&node2).await,
        "node 2 not ready while bob's channel is refused",
    )
    .await;
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("allchannels")
        .query_async::<()>(&mut conn)
        .await
        .expect("ACL SETUSER");
    eventually(
        async || ready(&node2).await,
        "node 2 ready once bob's channel is taken",
    )
    .await;
    alice.send_to(&bob.user_id, "heard").await;

    assert_eq!(
        bob.client.expect("private message").await["content"],
        "heard"
    );
}

async fn ready(node: &TestApp) -> bool {
    reqwest::get(format!("{}/readyz", node.url()))
        .await
        .is_ok_and(|answer| answer.status().is_success())
}
