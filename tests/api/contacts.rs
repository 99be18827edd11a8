//! `USERS_SCOPE=contacts`: a user sees itself and its contacts only, only its contacts hear of
//! its arrivals and departures, and the first message introduces the sender to the recipient.

use std::{collections::BTreeSet, time::Duration};

use privmsg::settings::UsersScope;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{
        NodeProcess, TestApp, TestClient, TestRedis, eventually, spawn_app_with, test_settings,
    },
    on_standalone_and_cluster,
};

pub async fn contacts_node(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    settings.users_scope = UsersScope::Contacts;
    spawn_app_with(settings).await
}

/// The userIDs listed in a `users` event.
fn listed(users: &Value) -> BTreeSet<String> {
    users
        .as_array()
        .expect("users is an array")
        .iter()
        .map(|user| user["userID"].as_str().expect("userID").to_owned())
        .collect()
}

fn ids<const N: usize>(users: [&str; N]) -> BTreeSet<String> {
    users.iter().map(|u| (*u).to_owned()).collect()
}

/// Whether a presence event concerns `user` (`user connected` carries an entry,
/// `user disconnected` the bare userID).
fn about(event: &(String, Value), user: &str) -> bool {
    match event.0.as_str() {
        "user connected" => event.1["userID"] == user,
        "user disconnected" => event.1 == user,
        _ => false,
    }
}

async fn users_lists_exactly_the_user_and_its_contacts(redis: TestRedis) {
    let app = contacts_node(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    assert_eq!(listed(&alice.users), ids([&alice.user_id]));

    let ack = alice.send_to(&bob.user_id, "hi bob").await;

    let again = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;
    let bob_again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;
    let carol_again = TestClient::join_with(&app, json!({ "sessionID": carol.session_id })).await;
    assert_eq!(listed(&again.users), ids([&alice.user_id, &bob.user_id]));
    assert_eq!(
        again.users[0]["userID"],
        alice.user_id.as_str(),
        "self first"
    );
    assert_eq!(again.users[0]["connected"], true);
    assert_eq!(
        again.listed(&bob.user_id)["messages"],
        json!([ack["message"]])
    );
    assert_eq!(
        listed(&bob_again.users),
        ids([&bob.user_id, &alice.user_id])
    );
    assert_eq!(listed(&carol_again.users), ids([&carol.user_id]));
}

async fn the_introduction_reaches_the_recipient_before_the_first_message_on_every_node(
    redis: TestRedis,
) {
    let (node1, node2) = (contacts_node(&redis).await, contacts_node(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob_far = TestClient::join(&node2, "bob").await;
    let auth = json!({ "sessionID": bob_far.session_id });
    let mut bob_near = TestClient::join_with(&node1, auth).await;

    alice.send_to(&bob_far.user_id, "first").await;
    alice.send_to(&bob_far.user_id, "second").await;

    for bob in [&mut bob_far.client, &mut bob_near.client] {
        let introduction = bob.expect("user connected").await;
        assert_eq!(
            introduction,
            json!({ "userID": alice.user_id, "username": "alice", "connected": true, "messages": [] })
        );
        let first = bob.expect("private message").await;
        assert_eq!(first["content"], "first");
        let order: Vec<&str> = bob.seen.iter().map(|(name, _)| name.as_str()).collect();
        let introduced = order.iter().position(|e| *e == "user connected");
        let delivered = order.iter().position(|e| *e == "private message");
        assert!(introduced < delivered, "{order:?}");
        // Contacts now: the second message comes without another introduction.
        let second = bob
            .expect_none_before("user connected", "private message")
            .await;
        assert_eq!(second["content"], "second");
    }
}

async fn presence_reaches_contacts_only(redis: TestRedis) {
    let (node1, node2) = (contacts_node(&redis).await, contacts_node(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut carol = TestClient::join(&node1, "carol").await;
    let mut carol_far =
        TestClient::join_with(&node2, json!({ "sessionID": carol.session_id })).await;
    alice.send_to(&bob.user_id, "hi").await;
    bob.client.expect("user connected").await;
    bob.client.expect("private message").await;
    alice.client.disconnect().await;
    assert_eq!(
        bob.client.expect("user disconnected").await,
        json!(alice.user_id)
    );

    let back = TestClient::join_with(&node1, json!({ "sessionID": alice.session_id })).await;
    let online = bob.client.expect("user connected").await;
    assert_eq!(online["userID"], back.user_id.as_str());
    // Published after alice's arrival was announced: had carol been told of it, she would have
    // been told first.
    bob.send_to(&carol.user_id, "marker").await;

    for carol in [&mut carol.client, &mut carol_far.client] {
        carol.expect("private message").await;
        let heard: Vec<_> = carol
            .seen
            .iter()
            .filter(|e| about(e, &alice.user_id))
            .collect();
        assert!(heard.is_empty(), "a non-contact heard of alice: {heard:?}");
    }
}

async fn contacts_survive_a_restart_and_the_expiry_of_the_history(redis: TestRedis) {
    let node = contacts_node(&redis).await;
    let alice = TestClient::join(&node, "alice").await;
    let bob = TestClient::join(&node, "bob").await;
    alice.send_to(&bob.user_id, "hi").await;
    node.stop().await;
    let mut conn = redis.conn().await;
    for user in [&alice.user_id, &bob.user_id] {
        let _: () = conn.del(format!("messages:{user}")).await.expect("DEL");
    }

    let node = contacts_node(&redis).await;
    let back = TestClient::join_with(&node, json!({ "sessionID": alice.session_id })).await;

    assert_eq!(listed(&back.users), ids([&alice.user_id, &bob.user_id]));
    assert_eq!(back.listed(&bob.user_id)["connected"], false);
}

const SESSION: &str = "1f2e3d4c5b6a7980";
const USER: &str = "a1b2c3d4e5f60718";
const PEER: &str = "0918273645abcdef";

async fn a_history_written_by_the_node_server_gives_contacts(redis: TestRedis) {
    redis.store_offline_session(SESSION, USER, "legacy").await;
    redis
        .store_offline_session("ffffffffffffffff", PEER, "old friend")
        .await;
    let mut conn = redis.conn().await;
    let old = json!({ "content": "hi", "from": PEER, "to": USER });
    let _: () = conn
        .rpush(format!("messages:{USER}"), old.to_string())
        .await
        .expect("RPUSH");
    let node = contacts_node(&redis).await;
    // The node indexes the sessions it did not write in the background.
    eventually(
        async || {
            let key: Option<String> = redis
                .conn()
                .await
                .get(format!("privmsg:user:{PEER}"))
                .await
                .ok()?;
            key
        },
        "the Node-written sessions indexed",
    )
    .await;

    let legacy = TestClient::join_with(&node, json!({ "sessionID": SESSION })).await;

    assert_eq!(listed(&legacy.users), ids([USER, PEER]));
    assert_eq!(legacy.listed(PEER)["messages"], json!([old]));
    let stored: BTreeSet<String> = conn
        .smembers(format!("privmsg:contacts:{USER}"))
        .await
        .expect("SMEMBERS");
    assert_eq!(stored, ids([PEER]), "derived contacts are kept");
    let found = legacy
        .client
        .ask("search users", json!({ "query": "OLD" }))
        .await;
    assert_eq!(found["users"][0]["userID"], PEER);
}

/// The sweep of a node killed without draining announces its users to their contacts only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_of_a_killed_node_tells_the_contacts_of_its_users_only() {
    let redis = TestRedis::start().await;
    let env = [("NODE_TTL_SECS", "3"), ("USERS_SCOPE", "contacts")];
    let mut crashing = NodeProcess::start(&redis, &env).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    settings.users_scope = UsersScope::Contacts;
    let survivor = spawn_app_with(settings).await;
    let mut bob = TestClient::join(&survivor, "bob").await;
    let mut carol = TestClient::join(&survivor, "carol").await;
    let alice = TestClient::join(&crashing, "alice").await;
    alice.send_to(&bob.user_id, "hi").await;
    bob.client.expect("private message").await;

    crashing.kill().await;

    let gone = bob
        .client
        .expect_within("user disconnected", Duration::from_secs(30))
        .await;
    assert_eq!(gone, json!(alice.user_id));
    bob.send_to(&carol.user_id, "marker").await;
    carol.client.expect("private message").await;
    let heard: Vec<_> = carol
        .client
        .seen
        .iter()
        .filter(|e| about(e, &alice.user_id))
        .collect();
    assert!(heard.is_empty(), "a non-contact heard of alice: {heard:?}");
}

/// A socket that closes while its `users` is still being built (a long history, read before
/// the arrival is announced in this scope) is never heard online after it left: it is not
/// announced at all (it never got its `users`), and its departure is (a `user disconnected`
/// for a user its contacts already hold offline changes nothing for them). A message from
/// Bob's next tab is the sync point: sent after that tab's arrival was announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closed_while_its_users_loads_is_never_heard_online_after_it_left() {
    let redis = TestRedis::start().await;
    let app = contacts_node(&redis).await;
    let mut alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    bob.send_to(&alice.user_id, "hi").await;
    bob.client.close().await;
    alice.client.expect("private message").await;
    alice.client.expect("user connected").await;
    alice.client.expect("user disconnected").await;
    // A long history (8 MB: a `users` a client can still read, below a WebSocket frame's 16 MiB):
    // building bob's `users` takes a while.
    let long = json!({ "content": "x".repeat(4000), "from": bob.user_id, "to": alice.user_id });
    let batch = vec![long.to_string(); 500];
    for _ in 0..4 {
        let _: () = redis
            .conn()
            .await
            .rpush(format!("messages:{}", bob.user_id), &batch)
            .await
            .expect("RPUSH");
    }
    let heard_before = alice.client.seen.len();

    // Bob comes back and is gone as soon as it has its session, before its `users`.
    let mut quick = TestClient::connect(&app, json!({ "sessionID": bob.session_id })).await;
    quick.expect("session").await;
    quick.close().await;
    alice.client.expect("user disconnected").await;
    let back = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;
    // The sync point is a message from the returning tab, not the next `user connected`: the
    // quick socket's own (if it got its `users` before closing) may wait in alice's backlog,
    // and would end the wait before the return is announced.
    back.send_to(&alice.user_id, "back").await;
    alice.client.expect("private message").await;

    let heard: Vec<&str> = alice.client.seen[heard_before..]
        .iter()
        .filter(|e| about(e, &bob.user_id))
        .map(|(event, _)| event.as_str())
        .collect();
    assert!(
        heard == ["user disconnected", "user connected"]
            || heard == ["user connected", "user disconnected", "user connected"],
        "online after leaving: {heard:?}"
    );
}

/// Stores `n` contacts of `user` as the server would have (set member, user key, session),
/// plus two members whose user is gone (no key; a key naming another user's session); returns
/// the userIDs that must be listed.
async fn store_contacts(redis: &TestRedis, user: &str, n: usize) -> BTreeSet<String> {
    let mut conn = redis.conn().await;
    let set = format!("privmsg:contacts:{user}");
    let mut listed = BTreeSet::new();
    for i in 0..n {
        let (contact, session) = (format!("c{i:015x}"), format!("s{i:015x}"));
        redis
            .store_offline_session(&session, &contact, &format!("contact {i}"))
            .await;
        let _: () = conn
            .set(format!("privmsg:user:{contact}"), &session)
            .await
            .expect("SET");
        let _: () = conn.sadd(&set, &contact).await.expect("SADD");
        listed.insert(contact);
    }
    let _: () = conn.sadd(&set, "gone00000000000a").await.expect("SADD");
    let _: () = conn.sadd(&set, "gone00000000000b").await.expect("SADD");
    let _: () = conn
        .set("privmsg:user:gone00000000000b", "s000000000000000")
        .await
        .expect("SET");
    listed
}

/// `users` lists every stored contact with its entry and none whose user is gone, whether the
/// set is read in one script call (a few contacts) or, past the script's bound, in steps.
async fn users_lists_every_stored_contact(redis: TestRedis, n: usize) {
    let app = contacts_node(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut expected = store_contacts(&redis, &alice.user_id, n).await;

    let again = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;

    expected.insert(alice.user_id.clone());
    assert_eq!(listed(&again.users), expected);
    let first = again.listed("c000000000000000");
    assert_eq!(first["username"], "contact 0");
    assert_eq!(first["connected"], false);
    let ttl: i64 = redis
        .conn()
        .await
        .ttl(format!("privmsg:contacts:{}", alice.user_id))
        .await
        .expect("TTL");
    assert!(ttl > 0, "the set's TTL is restarted at connect: {ttl}");
}

async fn users_lists_a_few_stored_contacts(redis: TestRedis) {
    users_lists_every_stored_contact(redis, 5).await;
}

async fn users_lists_more_stored_contacts_than_a_script_looks_up(redis: TestRedis) {
    users_lists_every_stored_contact(redis, 600).await;
}

on_standalone_and_cluster!(
    users_lists_a_few_stored_contacts,
    users_lists_more_stored_contacts_than_a_script_looks_up,
    users_lists_exactly_the_user_and_its_contacts,
    the_introduction_reaches_the_recipient_before_the_first_message_on_every_node,
    presence_reaches_contacts_only,
    contacts_survive_a_restart_and_the_expiry_of_the_history,
    a_history_written_by_the_node_server_gives_contacts,
);
