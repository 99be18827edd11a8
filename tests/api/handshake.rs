//! Handshake: restore by sessionID, else create from a username, else `invalid username`.

use serde_json::{Value, json};

use crate::helpers::{TestClient, TestRedis, spawn_app};

async fn refused_with(auth: Value) -> String {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let mut client = TestClient::connect(&app, auth).await;
    // A refusal (connect_error) is the last packet of a namespace connection that was never
    // accepted; `session` is only sent on an accepted one, so it would have come first.
    let error = client.expect_none_before("session", "error").await;
    error.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_gets_a_session_with_distinct_uuid_ids() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "alice").await;

    assert!(uuid::Uuid::try_parse(&alice.session_id).is_ok());
    assert!(uuid::Uuid::try_parse(&alice.user_id).is_ok());
    assert_ne!(alice.session_id, alice.user_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_by_session_id_keeps_the_same_user() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let first = TestClient::join(&app, "alice").await;
    first.client.disconnect().await;

    let again = TestClient::join_with(&app, json!({ "sessionID": first.session_id })).await;

    assert_eq!(again.session_id, first.session_id);
    assert_eq!(again.user_id, first.user_id);
    assert_eq!(again.listed(&first.user_id)["username"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_id_with_a_username_creates_a_new_session() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let bob = TestClient::join_with(&app, json!({ "sessionID": unknown, "username": "bob" })).await;

    assert_ne!(bob.session_id, unknown);
    assert!(bob.users.to_string().contains("bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_id_without_a_username_is_refused() {
    let unknown = uuid::Uuid::new_v4().to_string();
    let error = refused_with(json!({ "sessionID": unknown })).await;
    assert!(error.contains("invalid username"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_auth_is_refused_with_invalid_username() {
    let error = refused_with(json!({})).await;
    assert!(error.contains("invalid username"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_usernames_are_refused() {
    for username in [
        json!(""),
        json!("   "),
        json!("a\u{0}b"),
        json!("x".repeat(65)),
        json!(42),
    ] {
        let error = refused_with(json!({ "username": username })).await;
        assert!(error.contains("invalid username"), "{username}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_is_trimmed() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "  alice  ").await;

    let me = &alice.users.as_array().unwrap()[0];
    assert_eq!(me["username"], "alice");
}
