//! `POST /api/messages`: a message from a stored user, stored and delivered exactly as if it
//! had been sent from a socket (the one write path): both histories, every socket of either
//! user on every node, the contacts scope's introduction.

use privmsg::settings::UsersScope;
use serde_json::json;

use crate::{
    helpers::{ApiClient, TestClient, TestRedis, api_settings, spawn_api_app, spawn_app_with},
    on_standalone_and_cluster,
};

async fn a_message_sent_by_the_api_reaches_every_socket_of_both_users_on_both_nodes(
    redis: TestRedis,
) {
    let (one, two) = (spawn_api_app(&redis).await, spawn_api_app(&redis).await);
    let mut alice = TestClient::join(&one, "alice").await;
    let mut alice_tab = TestClient::join_with(&two, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&two, "bob").await;
    let mut bob_tab = TestClient::join_with(&one, json!({ "sessionID": bob.session_id })).await;
    let (a, b) = (alice.user_id.clone(), bob.user_id.clone());

    let answer = ApiClient::new(&one)
        .post(
            "/messages",
            &json!({ "from": a, "to": b, "content": "from the backend" }),
        )
        .await;

    assert_eq!(answer.status, 201, "{answer:?}");
    let message = &answer.body["message"];
    assert_eq!(message["content"], "from the backend");
    assert_eq!((&message["from"], &message["to"]), (&json!(a), &json!(b)));
    assert!(
        message["id"].is_string() && message["timestamp"].is_u64(),
        "{message}"
    );
    for socket in [
        &mut alice.client,
        &mut alice_tab.client,
        &mut bob.client,
        &mut bob_tab.client,
    ] {
        assert_eq!(&socket.expect("private message").await, message);
    }
    assert_eq!(redis.history(&a).await, std::slice::from_ref(message));
    assert_eq!(redis.history(&b).await, std::slice::from_ref(message));
    // The sender's socket answers as for any message of its own: its page holds it too.
    let page = bob.client.ask("fetch messages", json!({ "with": a })).await;
    assert_eq!(page["messages"], json!([message]));
}

async fn in_the_contacts_scope_an_offline_sender_is_introduced_with_its_real_status(
    redis: TestRedis,
) {
    let mut settings = api_settings(&redis);
    settings.users_scope = UsersScope::Contacts;
    let one = spawn_app_with(settings.clone()).await;
    let two = spawn_app_with(settings).await;
    let alice = TestClient::join(&one, "alice").await;
    let a = alice.user_id.clone();
    alice.client.disconnect().await;
    let mut bob = TestClient::join(&two, "bob").await;
    let b = bob.user_id.clone();
    let api = ApiClient::new(&one);
    crate::helpers::eventually(
        async || {
            let answer = api
                .get(&format!("/users/{}", crate::helpers::in_path(&a)))
                .await;
            answer.body["connected"] == false
        },
        "alice offline",
    )
    .await;

    let answer = api
        .post(
            "/messages",
            &json!({ "from": a, "to": b, "content": "hello" }),
        )
        .await;

    assert_eq!(answer.status, 201, "{answer:?}");
    let introduced = bob.client.expect("user connected").await;
    assert_eq!(introduced["userID"], a.as_str());
    assert_eq!(introduced["username"], "alice");
    assert_eq!(introduced["connected"], false);
    assert_eq!(
        bob.client.expect("private message").await,
        answer.body["message"]
    );
    let listed = TestClient::join_with(&two, json!({ "sessionID": bob.session_id })).await;
    assert_eq!(listed.listed(&a)["unread"], 1, "{}", listed.users);
}

on_standalone_and_cluster!(
    a_message_sent_by_the_api_reaches_every_socket_of_both_users_on_both_nodes,
    in_the_contacts_scope_an_offline_sender_is_introduced_with_its_real_status,
);
