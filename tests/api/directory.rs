//! The in-memory directory of users (`all` scope): `users` comes from it, presence events keep
//! it fresh across nodes (each delivered once per socket), and a resync with Redis heals what
//! an event missed, within `DIRECTORY_RESYNC_SECS`.

use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClient, TestRedis, WAIT, eventually_within, metric, spawn_app, spawn_app_with,
    test_settings,
};

/// How soon a resync must have healed the directory, with `DIRECTORY_RESYNC_SECS=1`: the
/// interval, plus a listing and a connect, with a margin for a loaded machine.
const HEALED: Duration = Duration::from_secs(3);

async fn node_resyncing_every_second(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    settings.directory_resync_secs = 1;
    spawn_app_with(settings).await
}

/// The `users` a client restoring `session_id` is given; the client leaves at once.
async fn users_seen_by(app: &TestApp, session_id: &str) -> Value {
    let client = TestClient::join_with(app, json!({ "sessionID": session_id })).await;
    client.client.disconnect().await;
    client.users
}

/// `user_id`'s entry in `users`, if listed.
fn entry(users: &Value, user_id: &str) -> Option<Value> {
    users
        .as_array()?
        .iter()
        .find(|user| user["userID"] == user_id)
        .cloned()
}

async fn corrections(app: &TestApp) -> u64 {
    metric(app, "privmsg_directory_corrections_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_event_that_was_never_published_is_healed_by_the_next_resync() {
    let redis = TestRedis::start().await;
    let app = node_resyncing_every_second(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let before = corrections(&app).await;

    // A node that wrote ghost's session and died before announcing it.
    let ghost = "0123456789abcdef";
    redis
        .store_offline_session("fedcba9876543210", ghost, "ghost")
        .await;
    let mut conn = redis.conn().await;
    let _: () = conn
        .hset("session:fedcba9876543210", "connected", "true")
        .await
        .expect("HSET");

    let listed = eventually_within(
        HEALED,
        async || entry(&users_seen_by(&app, &alice.session_id).await, ghost),
        "ghost to be listed",
    )
    .await;
    assert_eq!(listed["connected"], true, "{listed}");
    assert_eq!(listed["username"], "ghost", "{listed}");

    // Its departure is missed too.
    let _: () = conn
        .hset("session:fedcba9876543210", "connected", "false")
        .await
        .expect("HSET");
    eventually_within(
        HEALED,
        async || {
            let users = users_seen_by(&app, &alice.session_id).await;
            entry(&users, ghost).filter(|listed| listed["connected"] == false)
        },
        "ghost to be listed offline",
    )
    .await;
    assert!(corrections(&app).await >= before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_disappears_from_users_after_a_resync() {
    let redis = TestRedis::start().await;
    let old = "0123456789abcdef";
    redis
        .store_offline_session("fedcba9876543210", old, "old")
        .await;
    let app = node_resyncing_every_second(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    assert!(entry(&alice.users, old).is_some(), "{}", alice.users);

    let mut conn = redis.conn().await;
    let _: () = conn
        .pexpire("session:fedcba9876543210", 1)
        .await
        .expect("PEXPIRE");

    eventually_within(
        HEALED,
        async || entry(&users_seen_by(&app, &alice.session_id).await, old).is_none(),
        "the expired session to leave users",
    )
    .await;
    assert!(corrections(&app).await >= 1);
}

/// The pub/sub connection lost and reconnected (by the client library, before any check saw
/// it missing): what was announced meanwhile is read from Redis at once, not at the next
/// resync (an hour away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_is_read_again_as_soon_as_pub_sub_resumes() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.directory_resync_secs = 3600;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let missed = "0123456789abcdef";
    redis
        .store_offline_session("fedcba9876543210", missed, "missed")
        .await;

    let mut conn = redis.conn().await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    let subscribers: Vec<&str> = clients
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .filter_map(|field| field.strip_prefix("sub="))
                .any(|count| count != "0")
        })
        .filter_map(|line| line.split_whitespace().next()?.strip_prefix("id="))
        .collect();
    assert!(!subscribers.is_empty(), "{clients}");
    for id in subscribers {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async::<()>(&mut conn)
            .await
            .expect("CLIENT KILL");
    }

    eventually_within(
        WAIT,
        async || entry(&users_seen_by(&app, &alice.session_id).await, missed).is_some(),
        "the user stored while pub/sub was down to be listed",
    )
    .await;
}

/// Alice on node 1; dave, then bob, then carol on node 2. Each sees everyone before it in
/// `users`, and each watcher gets each `user connected` once: the node that announces emits
/// to its own sockets and skips its echo; the other node emits what it receives.
async fn users_on_two_nodes_see_each_other_and_each_arrival_once(redis: TestRedis) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut dave = TestClient::join(&node2, "dave").await;

    let bob = TestClient::join(&node2, "bob").await;
    let carol = TestClient::join(&node2, "carol").await;

    assert_eq!(bob.listed(&alice.user_id)["connected"], true);
    assert_eq!(bob.listed(&dave.user_id)["connected"], true);
    for user in [&alice.user_id, &dave.user_id, &bob.user_id] {
        assert_eq!(carol.listed(user)["connected"], true);
    }
    let arrivals = async |watcher: &mut TestClient, count: usize| {
        let mut seen = Vec::new();
        for _ in 0..count {
            let event = watcher.expect("user connected").await;
            seen.push(event["userID"].as_str().map(str::to_owned));
        }
        seen
    };
    // Carol was announced after bob, by the same node: a second copy of bob's would come
    // before hers.
    assert_eq!(
        arrivals(&mut alice.client, 3).await,
        [&dave.user_id, &bob.user_id, &carol.user_id].map(|id| Some(id.clone()))
    );
    assert_eq!(
        arrivals(&mut dave.client, 2).await,
        [&bob.user_id, &carol.user_id].map(|id| Some(id.clone()))
    );
    assert_eq!(
        bob.listed(&bob.user_id),
        &json!({ "userID": bob.user_id, "username": "bob", "connected": true, "messages": [], "unread": 0 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_presence_on_a_socket_io_channel() {
    let redis = TestRedis::start().await;
    let privmsg::store::RedisTarget::Standalone(url) = &redis.target else {
        unreachable!("a standalone Redis")
    };
    let client = redis::Client::open(url.as_str()).expect("URL");
    let mut watch = client.get_async_pubsub().await.expect("pub/sub");
    watch.psubscribe("socket.io*").await.expect("PSUBSCRIBE");
    let app = spawn_app(&redis).await;

    let alice = TestClient::join(&app, "alice").await;

    let mut messages = watch.on_message();
    let wanted = format!("|user connected|{{\"userID\":\"{}\"", alice.user_id);
    let mut seen = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(WAIT, messages.next()).await {
        let payload = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
        let channel = message.get_channel_name().to_owned();
        if channel == "socket.io-presence#" && payload.contains(&wanted) {
            return;
        }
        seen.push((channel, payload));
    }
    panic!("no announcement of alice on socket.io-presence#; saw {seen:?}");
}

crate::on_standalone_and_cluster!(users_on_two_nodes_see_each_other_and_each_arrival_once,);
