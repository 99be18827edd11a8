//! `typing` (docs/protocol.md, "Client to server", `typing`): `{ to }` reaches every socket of the recipient, on every
//! node, as `{ from }`; it is never stored, shares the socket's message rate, and a bad payload
//! is dropped (answered `{ error }` when an ack was asked for) without closing the socket.

use serde_json::json;

use crate::{
    helpers::{TestClient, TestRedis, spawn_app, spawn_app_with, test_settings},
    on_standalone_and_cluster,
};

async fn typing_reaches_every_socket_of_the_recipient_and_is_never_stored(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut bob_tab2 = TestClient::join_with(&node1, json!({ "sessionID": bob.session_id })).await;

    let ack = alice
        .client
        .ask("typing", json!({ "to": bob.user_id }))
        .await;

    assert_eq!(ack, json!({}));
    for client in [&mut bob.client, &mut bob_tab2.client] {
        assert_eq!(
            client.expect("typing").await,
            json!({ "from": alice.user_id })
        );
    }
    // A message sent after it, on the same socket: it is the first thing in either history.
    alice.send_to(&bob.user_id, "after typing").await;
    bob.client.expect("private message").await;
    for user in [&alice.user_id, &bob.user_id] {
        let contents: Vec<_> = redis
            .history(user)
            .await
            .iter()
            .map(|m| m["content"].clone())
            .collect();
        assert_eq!(contents, [json!("after typing")]);
    }
}

on_standalone_and_cluster!(typing_reaches_every_socket_of_the_recipient_and_is_never_stored,);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_typing_event_is_refused_with_a_reason_and_the_socket_stays() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let mut alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;

    let refusals = [
        (json!("bob"), "invalid payload: expected an object { to }"),
        (json!({}), "to must be a userID"),
        (json!({ "to": "no body" }), "to must be a userID"),
        (json!({ "to": "x".repeat(129) }), "to must be a userID"),
    ];
    for (payload, reason) in refusals {
        let ack = alice.client.ask("typing", payload.clone()).await;
        assert_eq!(ack, json!({ "error": reason }), "{payload}");
    }
    // Without an ack, a bad one is dropped quietly.
    alice.client.emit("typing", json!({ "to": 42 })).await;
    alice.send_to(&bob.user_id, "still here").await;

    let got = bob
        .client
        .expect_none_before("typing", "private message")
        .await;
    assert_eq!(got["content"], "still here");
    assert!(!alice.client.was_dropped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_shares_the_sockets_message_rate() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 1.0;
    settings.rate_limit_burst = 5.0;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;

    let mut forwarded = 0;
    for _ in 0..12 {
        let ack = alice
            .client
            .ask("typing", json!({ "to": bob.user_id }))
            .await;
        if ack == json!({}) {
            forwarded += 1;
        } else {
            assert_eq!(ack, json!({ "error": "rate limited, slow down" }));
        }
    }
    let message = alice.send_to(&bob.user_id, "over the rate").await;

    assert!((5..=6).contains(&forwarded), "{forwarded} forwarded");
    assert_eq!(message["error"], "rate limited, slow down", "{message}");
}
