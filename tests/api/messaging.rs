//! `private message` across nodes, acknowledgements and history.

use serde_json::{Value, json};

use futures_util::StreamExt;
use privmsg::store::RedisTarget;

use crate::helpers::{TestClient, TestRedis, WAIT, spawn_app};

async fn a_message_reaches_the_recipient_and_the_senders_other_tab_on_the_other_node_only(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut alice_tab2 =
        TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&node2, "bob").await;

    let ack = alice.send_to(&bob.user_id, "hello").await;

    let sent = &ack["message"];
    assert_eq!(sent["content"], "hello");
    assert_eq!(sent["from"], alice.user_id.as_str());
    assert_eq!(sent["to"], bob.user_id.as_str());
    assert!(
        sent["id"].is_string() && sent["timestamp"].is_u64(),
        "{ack}"
    );
    assert_eq!(&bob.client.expect("private message").await, sent);
    assert_eq!(&alice_tab2.client.expect("private message").await, sent);
    // Forwarding is done before the acknowledgement: had alice's own socket been sent her
    // message, it would come before bob's reply.
    bob.send_to(&alice.user_id, "reply").await;
    let first = alice.client.expect("private message").await;
    assert_eq!(
        first["content"], "reply",
        "the sending socket got its own message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_send_as_someone_else() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let mallory = TestClient::join(&app, "mallory").await;

    let forged =
        json!({ "content": "from alice, honest", "to": bob.user_id, "from": alice.user_id });
    mallory.client.send(forged).await;

    let received = bob.client.expect("private message").await;
    assert_eq!(received["from"], mallory.user_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_client_sending_without_an_ack_is_served() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;

    alice
        .client
        .send_without_ack(json!({ "content": "no ack", "to": bob.user_id }))
        .await;

    assert_eq!(
        bob.client.expect("private message").await["content"],
        "no ack"
    );
}

async fn messages_sent_while_the_recipient_is_offline_are_in_its_history_in_order(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let bob = TestClient::join(&node2, "bob").await;
    bob.client.disconnect().await;

    for i in 0..5 {
        let ack = alice.send_to(&bob.user_id, &format!("m{i}")).await;
        assert!(ack.get("message").is_some(), "{ack}");
    }
    let bob_back = TestClient::join_with(&node2, json!({ "sessionID": bob.session_id })).await;

    let contents: Vec<&Value> = bob_back.listed(&alice.user_id)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["content"])
        .collect();
    assert_eq!(contents, ["m0", "m1", "m2", "m3", "m4"]);
}

async fn a_message_to_oneself_is_stored_once_and_reaches_the_other_tabs(redis: TestRedis) {
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut tab2 = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;

    alice.send_to(&alice.user_id, "note to self").await;

    tab2.client.expect("private message").await;
    assert_eq!(redis.history(&alice.user_id).await.len(), 1);
}

crate::on_standalone_and_cluster!(
    a_message_reaches_the_recipient_and_the_senders_other_tab_on_the_other_node_only,
    messages_sent_while_the_recipient_is_offline_are_in_its_history_in_order,
    a_message_to_oneself_is_stored_once_and_reaches_the_other_tabs,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_cross_node_traffic_with_psubscribe_socket_io() {
    let redis = TestRedis::start().await;
    let RedisTarget::Standalone(url) = &redis.target else {
        unreachable!("a standalone Redis")
    };
    let mut watch = redis::Client::open(url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    watch.psubscribe("socket.io*").await.unwrap();
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;

    alice.send_to(&bob.user_id, "watched").await;
    bob.client.expect("private message").await;

    let mut messages = watch.on_message();
    let mut carried = false;
    while let Ok(Some(message)) = tokio::time::timeout(WAIT, messages.next()).await {
        let payload: Vec<u8> = message.get_payload().unwrap();
        if message.get_channel_name().starts_with("socket.io")
            && String::from_utf8_lossy(&payload).contains("watched")
        {
            carried = true;
            break;
        }
    }
    assert!(carried, "the message crossed nodes on a socket.io* channel");
}
