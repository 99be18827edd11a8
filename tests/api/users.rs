//! `users` and `user connected`.

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{TestClient, TestRedis, spawn_app};

async fn users_lists_self_and_peers_with_their_conversation(redis: TestRedis) {
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let ack = alice.send_to(&bob.user_id, "hi bob").await;
    assert!(ack.get("message").is_some(), "{ack}");
    bob.client.expect("private message").await;

    let carol = TestClient::join(&app, "carol").await;
    let bob_again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;

    let names = |users: &serde_json::Value| {
        let mut names: Vec<String> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&carol.users), ["alice", "bob", "carol"]);
    let alice_entry = bob_again.listed(&alice.user_id);
    assert_eq!(alice_entry["connected"], true);
    assert_eq!(alice_entry["messages"][0]["content"], "hi bob");
    assert_eq!(alice_entry["messages"][0]["from"], alice.user_id.as_str());
    assert_eq!(bob_again.listed(&carol.user_id)["messages"], json!([]));
    assert_eq!(bob_again.listed(&bob.user_id)["connected"], true);
}

async fn user_connected_reaches_sockets_on_the_other_node(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;

    let bob = TestClient::join(&node2, "bob").await;

    let event = alice.client.expect("user connected").await;
    assert_eq!(
        event,
        json!({ "userID": bob.user_id, "username": "bob", "connected": true, "messages": [] })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_id_is_listed_once() {
    let redis = TestRedis::start().await;
    for session in ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] {
        redis
            .store_offline_session(session, "0123456789abcdef", "twin")
            .await;
    }
    let mut conn = redis.conn().await;
    let _: () = conn
        .hset("session:cccccccccccccccc", "username", "no id")
        .await
        .unwrap();
    // Started after the data is written: the node's directory loads it at start.
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "alice").await;

    let users = alice.users.as_array().unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u["userID"] == "0123456789abcdef")
            .count(),
        1
    );
    assert_eq!(users.len(), 2, "{users:?}");
}

/// Sessions spread over every master of a cluster: the listing must SCAN them all.
async fn the_listing_includes_every_stored_session(redis: TestRedis) {
    for i in 0..50 {
        let id = format!("{i:016x}");
        redis
            .store_offline_session(&id, &id, &format!("user{i}"))
            .await;
    }
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "alice").await;

    assert_eq!(alice.users.as_array().unwrap().len(), 51);
}

/// Users joining at the same moment share listings; none may get one that misses itself, or
/// misses a user whose connection had completed before it joined.
async fn a_burst_of_joins_each_sees_itself_and_everyone_before(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let first = TestClient::join(&node1, "first").await;

    let joins = (0..30).map(|i| {
        let node = if i % 2 == 0 { &node1 } else { &node2 };
        async move { TestClient::join(node, &format!("user{i}")).await }
    });
    let joined = futures_util::future::join_all(joins).await;

    for user in &joined {
        assert_eq!(
            user.listed(&user.user_id)["connected"],
            true,
            "{}",
            user.user_id
        );
        assert_eq!(user.listed(&first.user_id)["username"], "first");
    }
}

crate::on_standalone_and_cluster!(
    a_burst_of_joins_each_sees_itself_and_everyone_before,
    the_listing_includes_every_stored_session,
    users_lists_self_and_peers_with_their_conversation,
    user_connected_reaches_sockets_on_the_other_node,
);
