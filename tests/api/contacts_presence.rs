//! `USERS_SCOPE=contacts`: what an arrival or a departure costs the other nodes, and that
//! contacts arriving at the same moment still each hear the other online.

use serde_json::{Value, json};

use crate::{
    contacts::contacts_node,
    helpers::{Connected, TestClient, TestRedis, user_channel_messages},
    on_standalone_and_cluster,
};

/// Whether `me` knows `other` is online: listed online in its `users`, or told so after.
async fn hears_online(me: &mut Connected, other: &str) {
    if me.listed(other)["connected"] == true {
        return;
    }
    let online = me.client.expect("user connected").await;
    assert_eq!(online["userID"], other, "{online}");
}

/// An arrival is announced only to the contacts its `users` listed online; a contact that
/// connects at the same moment, listed offline, must still hear of it (from Redis, in its own
/// `users`). Both come back at once, on different nodes, several times.
async fn contacts_arriving_together_each_hear_the_other_online(redis: TestRedis) {
    let (node1, node2) = (contacts_node(&redis).await, contacts_node(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    alice.send_to(&bob.user_id, "hi").await;
    bob.client.expect("private message").await;
    for _ in 0..5 {
        let (alice_session, bob_session) = (alice.session_id.clone(), bob.session_id.clone());
        alice.client.disconnect().await;
        assert_eq!(
            bob.client.expect("user disconnected").await,
            json!(alice.user_id)
        );
        bob.client.disconnect().await;

        let (mut alice_back, mut bob_back) = tokio::join!(
            TestClient::join_with(&node1, json!({ "sessionID": alice_session })),
            TestClient::join_with(&node2, json!({ "sessionID": bob_session })),
        );
        hears_online(&mut alice_back, &bob_back.user_id).await;
        hears_online(&mut bob_back, &alice_back.user_id).await;
        (alice, bob) = (alice_back, bob_back);
    }
}

on_standalone_and_cluster!(contacts_arriving_together_each_hear_the_other_online);

/// A node that holds a user and its contact delivers their presence to its own sockets and
/// does not publish what would only come back to it (standalone Redis; a cluster's sharded
/// publications still echo, docs/architecture.md, "Routing by user").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holding_both_contacts_receives_no_echo_of_their_presence() {
    let redis = TestRedis::start().await;
    let (node1, node2) = (contacts_node(&redis).await, contacts_node(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let bob = TestClient::join(&node1, "bob").await;
    let carol = TestClient::join(&node2, "carol").await;
    for peer in [&bob, &carol] {
        peer.send_to(&alice.user_id, "hi").await;
        alice.client.expect("private message").await;
    }
    let before = user_channel_messages(&node1).await;

    let bob_session = bob.session_id.clone();
    bob.client.disconnect().await;
    assert_eq!(
        alice.client.expect("user disconnected").await,
        json!(bob.user_id)
    );
    let back = TestClient::join_with(&node1, json!({ "sessionID": bob_session })).await;
    let online: Value = alice.client.expect("user connected").await;
    assert_eq!(online["userID"], back.user_id.as_str());
    // Published on alice's channel after bob's presence was: node 1's pub/sub connection
    // receives in Redis's order, so any echo of it would have come first.
    carol.send_to(&alice.user_id, "marker").await;
    assert_eq!(
        alice.client.expect("private message").await["content"],
        "marker"
    );
    assert_eq!(user_channel_messages(&node1).await - before, 1);
}
