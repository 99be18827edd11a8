//! `messages read` (docs/protocol.md, "Client to server", `messages read`): read marks persisted in Redis, never moving
//! back, told to every socket of both users on every node; `unread` in `users` and in
//! `search users`, and (an extension of it) `readUpTo`, so that read ticks survive a reload.

use serde_json::{Value, json};

use crate::{
    helpers::{Connected, TestApp, TestClient, TestRedis, spawn_app_with, test_settings},
    on_standalone_and_cluster,
};

async fn node(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    settings.rate_limit_per_sec = 0.0;
    spawn_app_with(settings).await
}

/// Sends `count` messages and returns their ids, oldest first.
async fn send(from: &Connected, to: &Connected, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let ack = from.send_to(&to.user_id, &format!("m{i}")).await;
        ids.push(ack["message"]["id"].as_str().expect("an id").to_owned());
    }
    ids
}

async fn a_read_mark_reaches_both_users_everywhere_and_survives_a_reload(redis: TestRedis) {
    let (one, two) = (node(&redis).await, node(&redis).await);
    let mut ann = TestClient::join(&one, "ann").await;
    let mut bob = TestClient::join(&two, "bob").await;
    let mut bob_tab = TestClient::join_with(&one, json!({ "sessionID": bob.session_id })).await;
    let ids = send(&ann, &bob, 3).await;

    let ack = bob
        .client
        .ask(
            "messages read",
            json!({ "with": ann.user_id, "upTo": ids[1] }),
        )
        .await;

    assert_eq!(ack, json!({}));
    let event = json!({ "by": bob.user_id, "with": ann.user_id, "upTo": ids[1] });
    for socket in [&mut ann.client, &mut bob.client, &mut bob_tab.client] {
        assert_eq!(socket.expect("messages read").await, event);
    }
    let bob_again = TestClient::join_with(&one, json!({ "sessionID": bob.session_id })).await;
    assert_eq!(
        bob_again.listed(&ann.user_id)["unread"],
        1,
        "m2 is not read yet"
    );
    let ann_again = TestClient::join_with(&two, json!({ "sessionID": ann.session_id })).await;
    let seen_by_ann = ann_again.listed(&bob.user_id);
    assert_eq!(
        seen_by_ann["readUpTo"], ids[1],
        "ann's read ticks survive her reload"
    );
    assert_eq!(seen_by_ann["unread"], 0, "bob sent ann nothing");
}

on_standalone_and_cluster!(a_read_mark_reaches_both_users_everywhere_and_survives_a_reload);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_mark_never_moves_back() {
    let redis = TestRedis::start().await;
    let app = node(&redis).await;
    let ann = TestClient::join(&app, "ann").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let ids = send(&ann, &bob, 3).await;
    let read = |up_to: &str| json!({ "with": ann.user_id, "upTo": up_to });

    bob.client.ask("messages read", read(&ids[2])).await;
    bob.client.ask("messages read", read(&ids[0])).await;

    let events: Vec<Value> = [
        bob.client.expect("messages read").await,
        bob.client.expect("messages read").await,
    ]
    .into();
    assert!(events.iter().all(|e| e["upTo"] == ids[2]), "{events:?}");
    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;
    assert_eq!(again.listed(&ann.user_id)["unread"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_in_users_and_in_search_results() {
    let redis = TestRedis::start().await;
    let app = node(&redis).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    send(&ann, &bob, 4).await;
    send(&carol, &bob, 2).await;
    send(&bob, &ann, 1).await;

    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;

    assert_eq!(again.listed(&ann.user_id)["unread"], 4);
    assert_eq!(again.listed(&carol.user_id)["unread"], 2);
    assert_eq!(again.listed(&bob.user_id)["unread"], 0);
    let found = again
        .client
        .ask("search users", json!({ "query": "a" }))
        .await;
    let ann_found = &found["users"].as_array().expect("users")[0];
    assert_eq!(ann_found["userID"], ann.user_id);
    assert_eq!(ann_found["unread"], 4);
    let found = again
        .client
        .ask("search users", json!({ "query": "carol" }))
        .await;
    assert_eq!(found["users"][0]["unread"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_read_is_refused_with_its_reason_and_nothing_moves() {
    let redis = TestRedis::start().await;
    let app = node(&redis).await;
    let ann = TestClient::join(&app, "ann").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    let ids = send(&ann, &bob, 1).await;
    let elsewhere = send(&carol, &bob, 1).await;
    let future = uuid::Uuid::now_v7().to_string();
    let with = ann.user_id.as_str();
    let cases = [
        (
            json!("ann"),
            "invalid payload: expected an object { with, upTo }",
        ),
        (json!({ "upTo": ids[0] }), "with must be a userID"),
        (
            json!({ "with": "ann\nsmith", "upTo": ids[0] }),
            "with must be a userID",
        ),
        (json!({ "with": with }), "upTo must be a messageID"),
        (
            json!({ "with": with, "upTo": "legacy:1" }),
            "upTo must be a messageID",
        ),
        (
            json!({ "with": with, "upTo": future }),
            "upTo is not a message of this conversation",
        ),
        (
            json!({ "with": with, "upTo": elsewhere[0] }),
            "upTo is not a message of this conversation",
        ),
    ];
    for (payload, error) in cases {
        let ack = bob.client.ask("messages read", payload.clone()).await;
        assert_eq!(ack, json!({ "error": error }), "{payload}");
    }
    // Then a good one, without an ack (as a client that does not care does): the first
    // `messages read` bob's socket gets is that one.
    bob.client
        .emit("messages read", json!({ "with": with, "upTo": ids[0] }))
        .await;
    assert_eq!(bob.client.expect("messages read").await["upTo"], ids[0]);
    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;
    assert_eq!(
        again.listed(&carol.user_id)["unread"],
        1,
        "carol's conversation untouched"
    );
}

/// A message stored before the conversation had an index (by an older version of this server:
/// an id, but only in the histories) can still be marked read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_before_the_index_can_be_marked_read() {
    use redis::AsyncCommands;
    let redis = TestRedis::start().await;
    let app = node(&redis).await;
    let ann = TestClient::join(&app, "ann").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let old_id = uuid::Uuid::now_v7().to_string();
    let old = json!({ "content": "old", "from": ann.user_id, "to": bob.user_id, "id": old_id, "timestamp": 1 });
    for user in [&ann.user_id, &bob.user_id] {
        let _: () = redis
            .conn()
            .await
            .rpush(format!("messages:{user}"), old.to_string())
            .await
            .expect("RPUSH");
    }
    send(&ann, &bob, 1).await;

    let ack = bob
        .client
        .ask(
            "messages read",
            json!({ "with": ann.user_id, "upTo": old_id }),
        )
        .await;

    assert_eq!(ack, json!({}));
    assert_eq!(bob.client.expect("messages read").await["upTo"], old_id);
    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;
    assert_eq!(
        again.listed(&ann.user_id)["unread"],
        1,
        "the newer one is still unread"
    );
}
