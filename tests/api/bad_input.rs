//! Untrusted payloads: refused with a reason, never stored or forwarded, the socket stays.

use rust_socketio::Payload;
use serde_json::{Value, json};

use crate::helpers::{TestClient, TestRedis, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_get_an_error_ack_and_nothing_is_stored_or_forwarded() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let to = Value::from(bob.user_id.clone());

    let cases = [
        (json!(null), "invalid payload"),
        (json!(42), "invalid payload"),
        (json!("hello"), "invalid payload"),
        (json!(["hello", to]), "invalid payload"),
        (json!({ "content": "hello" }), "to must be a userID"),
        (
            json!({ "content": "hello", "to": "every one" }),
            "to must be a userID",
        ),
        (
            json!({ "content": "hello", "to": 12 }),
            "to must be a userID",
        ),
        (
            json!({ "content": 12, "to": to }),
            "content must be a non-empty string",
        ),
        (
            json!({ "content": { "$ne": 1 }, "to": to }),
            "content must be a non-empty string",
        ),
        (
            json!({ "content": "", "to": to }),
            "content must be a non-empty string",
        ),
        (
            json!({ "content": "x".repeat(4097), "to": to }),
            "content is longer than 4096 bytes",
        ),
    ];
    for (payload, reason) in cases {
        let ack = alice.client.send(payload.clone()).await;
        let error = ack["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{payload}: {ack}"));
        assert!(error.contains(reason), "{payload}: {error}");
    }

    assert_eq!(redis.history(&alice.user_id).await.len(), 0);
    // Still connected and still able to send.
    let ack = alice.send_to(&bob.user_id, "fine").await;
    assert_eq!(ack["message"]["content"], "fine");
    // The first message bob gets: none of the refused ones was forwarded.
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "fine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_event_and_bad_payloads_without_ack_leave_the_socket_connected() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;

    let ack = alice.client.send_raw(Payload::Text(vec![])).await;
    assert!(ack["error"].is_string(), "{ack}");
    alice.client.send_without_ack(json!(null)).await;
    alice
        .client
        .send_without_ack(json!({ "content": 1, "to": bob.user_id }))
        .await;

    let ack = alice.send_to(&bob.user_id, "after").await;
    assert_eq!(ack["message"]["content"], "after");
    // The first message bob gets: none of the refused ones was forwarded.
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "after"
    );
}
