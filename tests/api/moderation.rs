//! Moderation, blocking (PROTOCOL.md, "Moderation"): a blocked sender's message is answered and
//! kept in its own history, reaches its own other tabs, and nothing of it reaches the blocker:
//! no socket on either node, no history, no unread count, no introduction, no webhook; typing
//! is dropped; `users` and `search users` mark the blocked user. Two nodes, standalone and
//! cluster, both scopes. Delete and edit: `moderation_edits.rs`.

use privmsg::settings::UsersScope;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{Connected, TestApp, TestClient, TestRedis, spawn_app_with, test_settings},
    on_standalone_and_cluster,
};

const WEBHOOK_SECRET: &str = "webhook-secret-0123456789abcdef-0123";

/// A node whose messages queue a `message.unread` webhook due in an hour (to no receiver):
/// the queue shows which messages queued one.
pub(crate) async fn node(redis: &TestRedis, scope: UsersScope) -> TestApp {
    let mut settings = test_settings(redis);
    settings.rate_limit_per_sec = 0.0;
    settings.users_scope = scope;
    settings.webhook_url = Some("http://127.0.0.1:9/hook".into());
    settings.webhook_secret = Some(WEBHOOK_SECRET.into());
    settings.webhook_events = "message.unread".into();
    settings.webhook_unread_after_secs = 3_600;
    spawn_app_with(settings).await
}

/// Every webhook delivery waiting in Redis.
async fn queued_webhooks(redis: &TestRedis) -> Vec<String> {
    redis
        .conn()
        .await
        .zrange("privmsg:webhooks", 0, -1)
        .await
        .expect("ZRANGE webhooks")
}

fn contents(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect()
}

/// Sends a note to oneself from `from`, and waits for it on `to` (another tab of the same
/// user): published on the user's channel after everything before it, so what `to` got
/// before it is everything that was sent to it earlier.
async fn marker(from: &Connected, to: &mut Connected, text: &str) {
    let ack = from.send_to(&from.user_id, text).await;
    assert!(ack.get("message").is_some(), "{ack}");
    let first = to
        .client
        .expect_none_before("typing", "private message")
        .await;
    assert_eq!(first["content"], text, "the first message this tab got");
    let withheld = ["typing", "message edited", "message deleted"];
    let early = to
        .client
        .seen
        .iter()
        .find(|(e, _)| withheld.contains(&e.as_str()));
    assert!(early.is_none(), "{early:?}");
}

async fn a_blocked_sender_reaches_nothing_of_the_blocker(redis: TestRedis, scope: UsersScope) {
    let (node1, node2) = (node(&redis, scope).await, node(&redis, scope).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut alice2 = TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    let bob = TestClient::join(&node2, "bob").await;
    let mut bob2 = TestClient::join_with(&node1, json!({ "sessionID": bob.session_id })).await;

    let ack = alice
        .client
        .ask("block user", json!({ "userID": bob.user_id }))
        .await;
    assert_eq!(ack, json!({ "blocked": [bob.user_id] }));

    let sent = bob.send_to(&alice.user_id, "blocked one").await;
    let blocked_id = sent["message"]["id"]
        .as_str()
        .expect("answered { message }");
    // The sender's other tab, on the other node, has it as usual.
    assert_eq!(
        bob2.client.expect("private message").await["id"],
        blocked_id
    );
    let typing = bob
        .client
        .ask("typing", json!({ "to": alice.user_id }))
        .await;
    assert_eq!(typing, json!({}), "dropped, not refused");
    // The sender may edit it: its own tabs hear of it, the blocker does not.
    let edit = json!({ "with": alice.user_id, "id": blocked_id, "content": "blocked, edited" });
    let edited = bob.client.ask("edit message", edit).await;
    assert_eq!(edited["message"]["content"], "blocked, edited", "{edited}");
    assert_eq!(bob2.client.expect("message edited").await["id"], blocked_id);

    // Neither of the blocker's tabs, on either node, got either.
    marker(&alice2, &mut alice, "marker for tab 1").await;
    marker(&alice, &mut alice2, "marker for tab 2").await;
    for tab in [&alice, &alice2] {
        let introduced = tab
            .client
            .seen
            .iter()
            .any(|(event, data)| event == "user connected" && data["userID"] == bob.user_id);
        if scope == UsersScope::Contacts {
            assert!(!introduced, "no introduction of a blocked sender");
        }
    }
    assert_eq!(
        contents(&redis.history(&bob.user_id).await),
        ["blocked, edited"]
    );
    let alices = redis.history(&alice.user_id).await;
    assert!(alices.iter().all(|m| m["id"] != blocked_id), "{alices:?}");
    assert!(
        !queued_webhooks(&redis)
            .await
            .iter()
            .any(|w| w.contains(blocked_id)),
        "no webhook for a blocked message"
    );

    // The sender's first page builds the index the two share from the sender's history: the
    // withheld message stays out of it, so out of the blocker's pages.
    let page = bob
        .client
        .ask("fetch messages", json!({ "with": alice.user_id }))
        .await;
    assert!(page.get("messages").is_some(), "{page}");
    let page = alice
        .client
        .ask("fetch messages", json!({ "with": bob.user_id }))
        .await;
    assert_eq!(page["messages"], json!([]), "{page}");

    // A new tab, on either node: bob is marked, with nothing unread and no conversation.
    let alice3 = TestClient::join_with(&node2, json!({ "sessionID": alice.session_id })).await;
    if scope == UsersScope::All {
        let entry = alice3.listed(&bob.user_id);
        assert_eq!(entry["blocked"], true, "{entry}");
        assert_eq!(entry["unread"], 0, "{entry}");
        assert_eq!(entry["messages"], json!([]), "{entry}");
        assert!(bob2.listed(&alice.user_id).get("blocked").is_none());
    }
    let found = alice
        .client
        .ask("search users", json!({ "query": "bob" }))
        .await;
    assert_eq!(found["users"][0]["blocked"], true, "{found}");
    let found = bob
        .client
        .ask("search users", json!({ "query": "alice" }))
        .await;
    assert!(found["users"][0].get("blocked").is_none(), "{found}");

    // Unblocking changes what comes after, never what was dropped.
    let ack = alice
        .client
        .ask("unblock user", json!({ "userID": bob.user_id }))
        .await;
    assert_eq!(ack, json!({ "blocked": [] }));
    let after = bob.send_to(&alice.user_id, "after unblock").await;
    let after_id = after["message"]["id"].as_str().expect("a message");
    for tab in [&mut alice, &mut alice2] {
        let got = tab.client.expect("private message").await;
        assert_eq!(got["content"], "after unblock");
    }
    assert_eq!(
        contents(&redis.history(&alice.user_id).await),
        ["marker for tab 1", "marker for tab 2", "after unblock"]
    );
    let queued = queued_webhooks(&redis).await;
    assert!(queued.iter().any(|w| w.contains(after_id)), "{queued:?}");
    assert!(!queued.iter().any(|w| w.contains(blocked_id)), "{queued:?}");
}

async fn in_the_all_scope(redis: TestRedis) {
    a_blocked_sender_reaches_nothing_of_the_blocker(redis, UsersScope::All).await;
}

async fn in_the_contacts_scope(redis: TestRedis) {
    a_blocked_sender_reaches_nothing_of_the_blocker(redis, UsersScope::Contacts).await;
}

on_standalone_and_cluster!(in_the_all_scope, in_the_contacts_scope);

/// A block is kept in Redis: a node started afterwards (a restart) enforces and shows it.
async fn a_new_node_keeps_the_blocks(redis: TestRedis) {
    let node1 = node(&redis, UsersScope::All).await;
    let alice = TestClient::join(&node1, "alice").await;
    let bob = TestClient::join(&node1, "bob").await;
    let ack = alice
        .client
        .ask("block user", json!({ "userID": bob.user_id }))
        .await;
    assert_eq!(ack, json!({ "blocked": [bob.user_id] }));
    let (alice_session, bob_session) = (alice.session_id.clone(), bob.session_id.clone());
    drop((alice, bob));
    node1.stop().await;

    let node2 = node(&redis, UsersScope::All).await;
    let alice = TestClient::join_with(&node2, json!({ "sessionID": alice_session })).await;
    let bob = TestClient::join_with(&node2, json!({ "sessionID": bob_session })).await;
    assert_eq!(alice.listed(&bob.user_id)["blocked"], true);
    bob.send_to(&alice.user_id, "after the restart").await;
    assert_eq!(
        contents(&redis.history(&bob.user_id).await),
        ["after the restart"]
    );
    assert!(redis.history(&alice.user_id).await.is_empty());
}

on_standalone_and_cluster!(a_new_node_keeps_the_blocks);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_block_is_refused_with_a_reason_and_a_full_list_takes_no_more() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.max_blocked_users = 2;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;

    for event in ["block user", "unblock user"] {
        let refusals = [
            (
                json!("bob"),
                "invalid payload: expected an object { userID }",
            ),
            (json!({}), "userID must be a userID"),
            (json!({ "userID": 7 }), "userID must be a userID"),
            (json!({ "userID": "no body" }), "userID must be a userID"),
            (
                json!({ "userID": alice.user_id }),
                "you cannot block yourself",
            ),
        ];
        for (payload, reason) in refusals {
            let ack = alice.client.ask(event, payload.clone()).await;
            assert_eq!(ack, json!({ "error": reason }), "{event} {payload}");
        }
    }
    for user in ["auth0|b", "c@example.com"] {
        let ack = alice
            .client
            .ask("block user", json!({ "userID": user }))
            .await;
        assert!(ack.get("blocked").is_some(), "{ack}");
    }
    let ack = alice
        .client
        .ask("block user", json!({ "userID": "d" }))
        .await;
    assert_eq!(
        ack,
        json!({ "error": "too many blocked users (at most 2)" })
    );
    // Blocking one already there again is no new entry.
    let ack = alice
        .client
        .ask("block user", json!({ "userID": "auth0|b" }))
        .await;
    assert_eq!(ack, json!({ "blocked": ["auth0|b", "c@example.com"] }));
    assert_eq!(
        crate::helpers::metric(
            &app,
            "privmsg_moderation_total{action=\"block_refused_too_many\"}"
        )
        .await,
        1
    );
}

/// Erasure takes the user's own block list with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_leaves_no_block_list() {
    let redis = TestRedis::start().await;
    let app = crate::helpers::spawn_api_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let ack = alice
        .client
        .ask("block user", json!({ "userID": "auth0|b" }))
        .await;
    assert_eq!(ack, json!({ "blocked": ["auth0|b"] }));
    let key = format!("privmsg:blocks:{{messages:{}}}", alice.user_id);
    assert!(redis.exists(&key).await);

    let path = format!("/users/{}", crate::helpers::in_path(&alice.user_id));
    let answer = crate::helpers::ApiClient::new(&app).delete(&path).await;
    assert_eq!(answer.status, 200);
    assert!(!redis.exists(&key).await, "{key} left behind");
}
