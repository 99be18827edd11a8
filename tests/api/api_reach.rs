//! `POST /api/users/{userID}/emit` and `POST /api/users/{userID}/disconnect`: a user's sockets
//! on every node, reached the way a backend's `@socket.io/redis-emitter` reaches them.

use serde_json::json;

use crate::{
    helpers::{ApiClient, TestClient, TestRedis, in_path, spawn_api_app},
    on_standalone_and_cluster,
};

async fn an_emit_reaches_every_socket_of_the_user_on_every_node_and_nobody_else(redis: TestRedis) {
    let (one, two) = (spawn_api_app(&redis).await, spawn_api_app(&redis).await);
    let mut alice = TestClient::join(&one, "alice").await;
    let mut alice_tab = TestClient::join_with(&two, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&two, "bob").await;
    let api = ApiClient::new(&one);
    let data = json!({ "text": "maintenance at noon", "level": 2 });

    let answer = api
        .post(
            &format!("/users/{}/emit", in_path(&alice.user_id)),
            &json!({ "event": "notice", "data": data }),
        )
        .await;

    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body, json!({}));
    assert_eq!(alice.client.expect("notice").await, data);
    assert_eq!(alice_tab.client.expect("notice").await, data);
    // A marker sent to Bob after the notice: had the notice reached him, it would come first.
    let marker = format!("/users/{}/emit", in_path(&bob.user_id));
    let sent = api
        .post(&marker, &json!({ "event": "marker", "data": 1 }))
        .await;
    assert_eq!(sent.status, 202);
    bob.client.expect_none_before("notice", "marker").await;
}

async fn an_emit_is_refused_with_its_reason(redis: TestRedis) {
    let one = spawn_api_app(&redis).await;
    let mut alice = TestClient::join(&one, "alice").await;
    let api = ApiClient::new(&one);
    let path = format!("/users/{}/emit", in_path(&alice.user_id));
    for (body, reason) in [
        (
            json!({ "event": "private message", "data": {} }),
            "reserved event",
        ),
        (json!({ "event": "users", "data": [] }), "reserved event"),
        (
            json!({ "event": "", "data": 1 }),
            "event must be a string of 1 to 64 characters",
        ),
        (json!({ "event": "notice" }), "data is missing"),
    ] {
        let answer = api.post(&path, &body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body, json!({ "error": reason }), "{body}");
    }
    let nobody = api
        .post(
            "/users/nobody-at-all/emit",
            &json!({ "event": "notice", "data": 1 }),
        )
        .await;
    assert_eq!(nobody.status, 404);
    assert_eq!(nobody.body, json!({ "error": "unknown user" }));
    // None of the refused ones reached the user: the next accepted emit is the first it hears.
    let ok = api
        .post(&path, &json!({ "event": "marker", "data": 0 }))
        .await;
    assert_eq!(ok.status, 202);
    alice
        .client
        .expect_none_before("private message", "marker")
        .await;
}

async fn a_disconnect_closes_every_socket_of_the_user_on_every_node(redis: TestRedis) {
    let (one, two) = (spawn_api_app(&redis).await, spawn_api_app(&redis).await);
    let mut alice = TestClient::join(&one, "alice").await;
    let mut alice_tab = TestClient::join_with(&two, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&two, "bob").await;
    let api = ApiClient::new(&two);

    let answer = api
        .post(
            &format!("/users/{}/disconnect", in_path(&alice.user_id)),
            &json!({}),
        )
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, json!({}));
    alice.client.expect("close").await;
    alice_tab.client.expect("close").await;
    let still = api
        .post(
            &format!("/users/{}/emit", in_path(&bob.user_id)),
            &json!({ "event": "still here", "data": true }),
        )
        .await;
    assert_eq!(still.status, 202);
    assert_eq!(bob.client.expect("still here").await, json!(true));
    assert!(!bob.client.was_dropped());
    // Without `revoke` the session stays: the same sessionID restores the same user.
    let back = TestClient::join_with(&one, json!({ "sessionID": alice.session_id })).await;
    assert_eq!(back.user_id, alice.user_id);
}

async fn a_disconnect_with_revoke_leaves_no_session_to_restore(redis: TestRedis) {
    let (one, two) = (spawn_api_app(&redis).await, spawn_api_app(&redis).await);
    let mut alice = TestClient::join(&one, "alice").await;
    let mut alice_tab = TestClient::join_with(&two, json!({ "sessionID": alice.session_id })).await;
    let api = ApiClient::new(&one);

    let answer = api
        .post(
            &format!("/users/{}/disconnect", in_path(&alice.user_id)),
            &json!({ "revoke": true }),
        )
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    alice.client.expect("close").await;
    alice_tab.client.expect("close").await;
    let session_key = format!("session:{}", alice.session_id);
    assert!(
        !redis.exists(&session_key).await,
        "{session_key} is still stored"
    );
    crate::api_erasure::restores_nothing(&two, &alice.session_id).await;
    let bad = api
        .post(
            &format!("/users/{}/disconnect", in_path(&alice.user_id)),
            &json!({ "revoke": "yes" }),
        )
        .await;
    assert_eq!(bad.status, 400);
}

on_standalone_and_cluster!(
    an_emit_reaches_every_socket_of_the_user_on_every_node_and_nobody_else,
    an_emit_is_refused_with_its_reason,
    a_disconnect_closes_every_socket_of_the_user_on_every_node,
    a_disconnect_with_revoke_leaves_no_session_to_restore,
);
