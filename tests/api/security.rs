//! A sessionID is a secret: only its owner's sockets ever receive it.

use serde_json::json;

use crate::helpers::{TestClient, TestRedis, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_other_socket_ever_sees_a_session_id() {
    let redis = TestRedis::start().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut eve = TestClient::join(&node2, "eve").await;
    let alice = TestClient::join(&node1, "alice").await;
    let tab2 = TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;

    // Everything alice can make the server say: a connection, messages, presence changes.
    alice.send_to(&eve.user_id, "hi eve").await;
    alice
        .send_to(&eve.user_id, &alice.session_id.len().to_string())
        .await;
    alice.client.disconnect().await;
    tab2.client.disconnect().await;
    eve.client.expect("user disconnected").await;
    let back = TestClient::join_with(&node1, json!({ "sessionID": alice.session_id })).await;
    eve.client.expect("user connected").await;
    back.client.disconnect().await;
    eve.client.expect("user disconnected").await;

    let everything = format!("{:?}", eve.client.seen);
    assert!(
        everything.contains(&alice.user_id),
        "the test saw alice's traffic"
    );
    assert!(
        !everything.contains(&alice.session_id),
        "eve saw alice's sessionID"
    );
}
