//! Limits against hostile clients (issue 12, item 4): new sessions per client address, the
//! node's connection cap, the rate check before a payload is parsed; each refuses with its
//! reason, is counted, and costs nobody else their connection or their session.

use rust_socketio::TransportType::Websocket;
use serde_json::{Value, json};

use crate::helpers::{
    Connected, Server, TestClient, TestRedis, metric, spawn_app_with, test_settings,
};

/// The `connect_error` a handshake with `auth`, sent with `headers`, is refused with.
pub async fn refusal(server: &impl Server, auth: Value, headers: &[(&str, &str)]) -> String {
    let mut client = TestClient::connect_with_headers(server.url(), auth, Websocket, headers).await;
    let error = client.expect_none_before("session", "error").await;
    client.disconnect().await;
    error.to_string()
}

/// Joins as a new user `name`, claiming to come from `forwarded_for`.
pub async fn join_from(server: &impl Server, name: &str, forwarded_for: &str) -> Connected {
    let auth = json!({ "username": name });
    let headers = [("X-Forwarded-For", forwarded_for)];
    TestClient::join_with_headers(server.url(), auth, Websocket, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_quota_an_address_cannot_create_sessions_but_still_restores_them() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.new_sessions_per_minute = 1;
    settings.new_sessions_burst = 2;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;

    let refused = refusal(&app, json!({ "username": "mallory" }), &[]).await;
    // An unknown sessionID with a username creates a session too.
    let unknown = json!({ "sessionID": uuid::Uuid::new_v4().to_string(), "username": "eve" });
    let refused_too = refusal(&app, unknown, &[]).await;

    assert!(refused.contains("too many new sessions"), "{refused}");
    assert!(
        refused_too.contains("too many new sessions"),
        "{refused_too}"
    );
    let tab2 = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;
    assert_eq!(tab2.user_id, alice.user_id);
    let ack = tab2.send_to(&bob.user_id, "still here").await;
    assert_eq!(ack["message"]["content"], "still here", "{ack}");
    assert_eq!(bob.client.expect("private message").await, ack["message"]);
    let reason = "privmsg_handshakes_refused_total{reason=\"too_many_new_sessions\"}";
    assert_eq!(metric(&app, reason).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_a_client_that_is_not_a_trusted_proxy_is_ignored() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.new_sessions_per_minute = 1;
    settings.new_sessions_burst = 1;
    let app = spawn_app_with(settings).await;
    join_from(&app, "alice", "203.0.113.1").await;

    // Another claimed address, the same TCP peer: the same quota, already spent.
    let headers = [("X-Forwarded-For", "203.0.113.2")];
    let refused = refusal(&app, json!({ "username": "bob" }), &headers).await;

    assert!(refused.contains("too many new sessions"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_refuses_new_connections_and_keeps_the_ones_it_holds() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.max_connections = 2;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;

    let newcomer = refusal(&app, json!({ "username": "carol" }), &[]).await;
    let restore = refusal(&app, json!({ "sessionID": alice.session_id }), &[]).await;

    assert!(newcomer.contains("server full"), "{newcomer}");
    assert!(restore.contains("server full"), "{restore}");
    let ack = alice.send_to(&bob.user_id, "we are fine").await;
    assert_eq!(bob.client.expect("private message").await, ack["message"]);
    let full = "privmsg_handshakes_refused_total{reason=\"server_full\"}";
    assert_eq!(metric(&app, full).await, 2);
    // A place freed by a departure is taken again.
    alice.client.disconnect().await;
    bob.client.expect("user disconnected").await;
    let mut carol = TestClient::connect(&app, json!({ "username": "carol" })).await;
    carol.expect_none_before("error", "session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_event_is_refused_before_its_payload_is_parsed() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.001;
    settings.rate_limit_burst = 1.0;
    let app = spawn_app_with(settings).await;
    let mut flooder = TestClient::join(&app, "flooder").await;
    let bob = TestClient::join(&app, "bob").await;
    let big = "x".repeat(200_000);

    let first = flooder.send_to(&bob.user_id, &big).await;
    let mut flood = Vec::new();
    for _ in 0..5 {
        flood.push(flooder.send_to(&bob.user_id, &big).await);
    }
    let search = flooder
        .client
        .ask("search users", json!({ "query": big }))
        .await;

    assert_eq!(
        first["error"], "content is longer than 4096 bytes",
        "{first}"
    );
    for ack in &flood {
        assert_eq!(ack["error"], "rate limited, slow down", "{ack}");
    }
    assert_eq!(search, json!({ "error": "rate limited" }));
    // Only the first payload was read: the refused ones were never deserialized.
    let decoded = "privmsg_payload_bytes_decoded_total{event=\"private message\"}";
    let bytes = metric(&app, decoded).await;
    assert!((200_000..400_000).contains(&bytes), "{bytes} bytes decoded");
    let searched = "privmsg_payload_bytes_decoded_total{event=\"search users\"}";
    assert_eq!(metric(&app, searched).await, 0);
    // Others are not limited, and the flooder is still connected.
    let ack = bob
        .send_to(&flooder.user_id, "others are not limited")
        .await;
    assert_eq!(
        flooder.client.expect("private message").await,
        ack["message"]
    );
}
