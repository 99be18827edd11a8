//! Moderation, delete and edit (PROTOCOL.md, "Moderation"): only the sender may; the message
//! changes in both histories, the conversation's index and every page; every socket of both
//! users on both nodes hears of it; an edit only within EDIT_WINDOW_SECS. Standalone and
//! cluster. Blocking: `moderation.rs`.

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{TestClient, TestRedis, spawn_app_with, test_settings},
    on_standalone_and_cluster,
};

fn page_contents(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .expect("a page")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect()
}

async fn a_change_reaches_both_histories_every_page_and_every_socket(redis: TestRedis) {
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    let node1 = spawn_app_with(settings.clone()).await;
    let node2 = spawn_app_with(settings).await;
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut alice2 = TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut bob2 = TestClient::join_with(&node1, json!({ "sessionID": bob.session_id })).await;

    let first = alice.send_to(&bob.user_id, "first").await["message"].clone();
    let second = alice.send_to(&bob.user_id, "second").await["message"].clone();
    let (first_id, second_id) = (
        first["id"].as_str().expect("id"),
        second["id"].as_str().expect("id"),
    );
    for tab in [&mut alice2, &mut bob, &mut bob2] {
        for _ in 0..2 {
            tab.client.expect("private message").await;
        }
    }
    // A page builds the conversation's index: the change must reach it too.
    let page = bob
        .client
        .ask("fetch messages", json!({ "with": alice.user_id }))
        .await;
    assert_eq!(page_contents(&page), ["first", "second"]);

    // Nobody but the sender.
    for event in ["delete message", "edit message"] {
        let ack = bob
            .client
            .ask(
                event,
                json!({ "with": alice.user_id, "id": first_id, "content": "x" }),
            )
            .await;
        assert_eq!(ack, json!({ "error": "not your message" }), "{event}");
    }
    let unknown = "0190f1a2-0000-7000-8000-000000000000";
    let ack = alice.delete_message(&bob.user_id, &unknown).await;
    assert_eq!(ack, json!({ "error": "unknown message" }));

    let ack = alice
        .edit_message(&bob.user_id, &first_id, "first, edited")
        .await;
    let edited = &ack["message"];
    assert_eq!(edited["id"], first["id"], "{ack}");
    assert_eq!(edited["timestamp"], first["timestamp"], "{ack}");
    assert_eq!(edited["content"], "first, edited");
    let edited_at = edited["editedAt"].as_u64().expect("editedAt in ms");
    assert!(edited_at >= first["timestamp"].as_u64().expect("a timestamp"));
    let event = json!({
        "id": first_id, "from": alice.user_id, "to": bob.user_id,
        "content": "first, edited", "editedAt": edited_at,
    });
    for tab in [&mut alice, &mut alice2, &mut bob, &mut bob2] {
        assert_eq!(tab.client.expect("message edited").await, event);
    }

    let ack = alice.delete_message(&bob.user_id, &second_id).await;
    assert_eq!(ack, json!({}));
    let event = json!({ "id": second_id, "from": alice.user_id, "to": bob.user_id });
    for tab in [&mut alice, &mut alice2, &mut bob, &mut bob2] {
        assert_eq!(tab.client.expect("message deleted").await, event);
    }

    for user in [&alice.user_id, &bob.user_id] {
        let history = redis.history(user).await;
        assert_eq!(history, std::slice::from_ref(edited), "{user}");
    }
    for (tab, peer) in [(&bob, &alice.user_id), (&alice, &bob.user_id)] {
        let page = tab
            .client
            .ask("fetch messages", json!({ "with": peer }))
            .await;
        assert_eq!(page["messages"], json!([edited]), "{page}");
    }
    // Deleted once: a second delete finds nothing.
    let ack = alice.delete_message(&bob.user_id, &second_id).await;
    assert_eq!(ack, json!({ "error": "unknown message" }));
}

on_standalone_and_cluster!(a_change_reaches_both_histories_every_page_and_every_socket);

/// The window: a message stored with an old timestamp is past it (the sender may still
/// delete it); EDIT_WINDOW_SECS=0 turns editing off.
async fn an_edit_only_within_the_window(redis: TestRedis) {
    let mut settings = test_settings(&redis);
    settings.edit_window_secs = 60;
    let app = spawn_app_with(settings.clone()).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    let old_id = "0190f1a2-0000-7000-8000-0000000000aa";
    let old = json!({
        "content": "long ago", "from": alice.user_id, "to": bob.user_id,
        "id": old_id, "timestamp": 1_000,
    })
    .to_string();
    let mut conn = redis.conn().await;
    for user in [&alice.user_id, &bob.user_id] {
        let _: i64 = conn
            .rpush(format!("messages:{user}"), &old)
            .await
            .expect("RPUSH");
    }
    let ack = alice.edit_message(&bob.user_id, &old_id, "x").await;
    assert_eq!(ack, json!({ "error": "too late to edit" }));
    let fresh = alice.send_to(&bob.user_id, "fresh").await;
    let fresh_id = fresh["message"]["id"].as_str().expect("an id");
    let ack = alice.edit_message(&bob.user_id, &fresh_id, "y").await;
    assert_eq!(ack["message"]["content"], "y", "{ack}");
    let ack = alice.delete_message(&bob.user_id, &old_id).await;
    assert_eq!(ack, json!({}));
    assert_eq!(redis.history(&bob.user_id).await.len(), 1);

    settings.edit_window_secs = 0;
    let off = spawn_app_with(settings).await;
    let alice = TestClient::join_with(&off, json!({ "sessionID": alice.session_id })).await;
    let ack = alice.edit_message(&bob.user_id, &fresh_id, "z").await;
    assert_eq!(ack, json!({ "error": "editing is off" }));
}

on_standalone_and_cluster!(an_edit_only_within_the_window);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_delete_or_edit_is_refused_with_a_reason() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.max_message_bytes = 10;
    let app = spawn_app_with(settings).await;
    let mut alice = TestClient::join(&app, "alice").await;
    let id = "0190f1a2-0000-7000-8000-000000000000";

    let both = [
        (
            json!("x"),
            "invalid payload: expected an object { with, id }",
        ),
        (json!({ "id": id }), "with must be a userID"),
        (json!({ "with": "a b", "id": id }), "with must be a userID"),
        (json!({ "with": "bob" }), "id must be a messageID"),
        (json!({ "with": "bob", "id": 5 }), "id must be a messageID"),
    ];
    for event in ["delete message", "edit message"] {
        for (payload, reason) in &both {
            let ack = alice.client.ask(event, payload.clone()).await;
            assert_eq!(ack, json!({ "error": reason }), "{event} {payload}");
        }
    }
    let edits = [
        (
            json!({ "with": "bob", "id": id }),
            "content must be a non-empty string",
        ),
        (
            json!({ "with": "bob", "id": id, "content": " " }),
            "content must be a non-empty string",
        ),
        (
            json!({ "with": "bob", "id": id, "content": "x".repeat(11) }),
            "content is longer than 10 bytes",
        ),
    ];
    for (payload, reason) in edits {
        let ack = alice.client.ask("edit message", payload.clone()).await;
        assert_eq!(ack, json!({ "error": reason }), "{payload}");
    }
    assert!(!alice.client.was_dropped());
}
