//! Limits against abuse: per-socket rate, sockets per user, payload size on every transport.

use rust_socketio::TransportType;
use serde_json::json;

use crate::helpers::{TestClient, TestRedis, spawn_app, spawn_app_with, test_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_socket_is_rate_limited_and_others_are_not() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 1.0;
    settings.rate_limit_burst = 5.0;
    let app = spawn_app_with(settings).await;
    let flooder = TestClient::join(&app, "flooder").await;
    let bob = TestClient::join(&app, "bob").await;

    let mut accepted = 0;
    for i in 0..12 {
        let ack = flooder.send_to(&bob.user_id, &format!("m{i}")).await;
        if ack.get("message").is_some() {
            accepted += 1;
        } else {
            assert_eq!(ack["error"], "rate limited, slow down", "{ack}");
        }
    }

    assert!((5..=6).contains(&accepted), "{accepted} accepted");
    let ack = bob.send_to(&flooder.user_id, "I am fine").await;
    assert!(ack.get("message").is_some(), "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_open_more_than_the_allowed_sockets() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.max_sockets_per_user = 2;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let auth = json!({ "sessionID": alice.session_id });
    let _second = TestClient::join_with(&app, auth.clone()).await;

    let mut third = TestClient::connect(&app, auth.clone()).await;

    let error = third.expect("error").await;
    assert!(
        error.to_string().contains("too many connections"),
        "{error}"
    );
    third.disconnect().await;
    // Other users are unaffected.
    TestClient::join(&app, "bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_over_long_polling_gets_an_error_ack_and_the_socket_stays() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let auth = json!({ "username": "alice" });
    let mut alice = TestClient::connect_with(&app, auth, TransportType::Polling).await;
    alice.expect("session").await;
    let me = alice.expect("users").await[0]["userID"].clone();

    let ack = alice
        .send(json!({ "content": "x".repeat(100_000), "to": me }))
        .await;

    assert_eq!(ack["error"], "content is longer than 4096 bytes", "{ack}");
    let ack = alice
        .send(json!({ "content": "still here", "to": me }))
        .await;
    assert_eq!(ack["message"]["content"], "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_pending_limit_messages_are_refused_at_once_and_not_stored() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.max_pending_messages = 1;
    settings.rate_limit_per_sec = 0.0;
    let app = spawn_app_with(settings).await;
    let sink = TestClient::join(&app, "sink").await;
    let mut senders = Vec::new();
    for i in 0..20 {
        senders.push(TestClient::join(&app, &format!("sender{i}")).await);
    }

    let contents: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let sends = senders.iter().flat_map(|s| {
        contents
            .iter()
            .map(|content| s.send_to(&sink.user_id, content))
    });
    let acks = futures_util::future::join_all(sends).await;

    let accepted = acks.iter().filter(|a| a.get("message").is_some()).count();
    let busy = acks
        .iter()
        .filter(|a| a["error"] == "server busy, message not sent")
        .count();
    assert_eq!(accepted + busy, acks.len(), "{acks:?}");
    assert!(busy > 0 && accepted > 0, "{accepted} accepted, {busy} busy");
    assert_eq!(redis.history(&sink.user_id).await.len(), accepted);
}
