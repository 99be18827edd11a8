//! `GET /api/users/{userID}` and its export: who a user is, whether it is online, and
//! everything stored about it, never a sessionID.

use serde_json::json;

use crate::helpers::{ApiClient, TestClient, TestRedis, eventually, in_path, spawn_api_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_shown_connected_while_a_socket_is_open_and_not_after() {
    let redis = TestRedis::start().await;
    let (one, two) = (spawn_api_app(&redis).await, spawn_api_app(&redis).await);
    let alice = TestClient::join(&two, "alice").await;
    let path = format!("/users/{}", in_path(&alice.user_id));
    let api = ApiClient::new(&one);

    let online = api.get(&path).await;
    alice.client.disconnect().await;

    assert_eq!(online.status, 200);
    let entry = json!({ "userID": alice.user_id, "username": "alice", "connected": true });
    assert_eq!(online.body, entry);
    let offline = json!({ "userID": alice.user_id, "username": "alice", "connected": false });
    eventually(
        async || api.get(&path).await.body == offline,
        "alice offline",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_the_whole_history_the_contacts_and_the_read_marks_and_no_session() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    let (a, b, c) = (&alice.user_id, &bob.user_id, &carol.user_id);
    let first = alice.send_to(b, "one").await["message"].clone();
    let second = bob.send_to(a, "two").await["message"].clone();
    let third = carol.send_to(a, "three").await["message"].clone();
    let read = json!({ "with": b, "upTo": second["id"] });
    assert_eq!(alice.client.ask("messages read", read).await, json!({}));

    let answer = ApiClient::new(&app)
        .get(&format!("/users/{}/export", in_path(a)))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let mut contacts = vec![b.clone(), c.clone()];
    contacts.sort();
    assert_eq!(
        answer.body,
        json!({
            "user": { "userID": a, "username": "alice" },
            "messages": [first, second, third],
            "contacts": contacts,
            "reads": { b.as_str(): second["id"] },
        })
    );
    assert!(!answer.body.to_string().contains(&alice.session_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_shaped_userid_is_found_through_its_percent_encoded_path() {
    let redis = TestRedis::start().await;
    let user = "auth0|5f7c8ec7c33c6c004bbafe82:{x}%";
    redis
        .store_offline_session("0123456789abcdef", user, "Ann")
        .await;
    // The index's upkeep (at once in tests) indexes the sessions another server wrote.
    let app = spawn_api_app(&redis).await;
    let path = format!("/users/{}", in_path(user));
    assert!(path.contains("auth0%7C"), "{path}");

    let entry = json!({ "userID": user, "username": "Ann", "connected": false });
    let api = ApiClient::new(&app);
    eventually(
        async || api.get(&path).await.body == entry,
        "the user found",
    )
    .await;
}
