//! `fetch messages` and `HISTORY_ON_CONNECT` (docs/protocol.md, "Client to server", `fetch messages`): pages of
//! one conversation, newest first page by page, each oldest first, `more` until its start;
//! histories the Node server wrote (no ids) paged by their `legacy:<n>` addresses.

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{
        Connected, TestApp, TestClient, TestRedis, conversation_key, spawn_app_with, test_settings,
    },
    on_standalone_and_cluster,
};
use privmsg::settings::HistoryOnConnect;

async fn node(redis: &TestRedis, history_on_connect: Option<usize>) -> TestApp {
    let mut settings = test_settings(redis);
    settings.rate_limit_per_sec = 0.0;
    settings.history_on_connect = HistoryOnConnect(history_on_connect);
    spawn_app_with(settings).await
}

/// Every page of `me`'s conversation with `with`, `limit` at a time, from the newest: the
/// messages in order (oldest first), and how many pages it took.
async fn walk(me: &Connected, with: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut before: Option<String> = None;
    let mut all: Vec<Value> = Vec::new();
    for pages in 1..=100 {
        let ack = me
            .client
            .ask(
                "fetch messages",
                json!({ "with": with, "before": before, "limit": limit }),
            )
            .await;
        let page = ack["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("a page: {ack}"))
            .clone();
        assert!(page.len() <= limit, "{ack}");
        let more = ack["more"].as_bool().expect("more");
        before = page
            .first()
            .map(|m| m["id"].as_str().expect("an address").to_owned());
        all.splice(0..0, page);
        if !more {
            return (all, pages);
        }
    }
    panic!("no end after 100 pages");
}

fn contents(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect()
}

async fn pages_walk_a_conversation_back_to_its_start(redis: TestRedis) {
    let app = node(&redis, None).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    let mut sent = Vec::new();
    for i in 0..25 {
        let (from, to) = if i % 3 == 0 {
            (&bob, &ann)
        } else {
            (&ann, &bob)
        };
        let content = format!("m{i}");
        assert!(from.send_to(&to.user_id, &content).await["message"].is_object());
        sent.push(content);
        if i % 5 == 0 {
            carol.send_to(&ann.user_id, "not this conversation").await;
        }
    }

    for (me, with) in [(&ann, &bob), (&bob, &ann)] {
        let (all, pages) = walk(me, &with.user_id, 10).await;
        assert_eq!(contents(&all), sent, "the whole conversation, in order");
        assert_eq!(pages, 3);
        assert!(
            all.iter()
                .all(|m| m["id"].is_string() && m["timestamp"].is_number())
        );
    }
    // Both histories were read once to find nothing older: marked, so no page reads them again.
    let key = conversation_key(&ann.user_id, &bob.user_id);
    for user in [&ann.user_id, &bob.user_id] {
        let mark: Option<f64> = redis
            .conn()
            .await
            .zscore(&key, format!("!{user}"))
            .await
            .expect("ZSCORE");
        assert_eq!(mark, Some(0.0), "{user}'s start is marked");
    }
    // The newest page by default: limit 50.
    let ack = ann
        .client
        .ask("fetch messages", json!({ "with": carol.user_id }))
        .await;
    assert_eq!(ack["messages"].as_array().map(Vec::len), Some(5));
    assert_eq!(ack["more"], false);
    // Nobody's conversation with itself, or with a stranger, is empty.
    let stranger = uuid::Uuid::new_v4().to_string();
    for with in [&ann.user_id, &stranger] {
        let ack = ann
            .client
            .ask("fetch messages", json!({ "with": with }))
            .await;
        assert_eq!(ack, json!({ "messages": [], "more": false }));
    }
}

async fn history_on_connect_caps_users_and_pages_reach_the_rest(redis: TestRedis) {
    let app = node(&redis, Some(3)).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    for i in 0..8 {
        ann.send_to(&bob.user_id, &format!("m{i}")).await;
    }
    bob.send_to(&bob.user_id, "note to self").await;

    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;

    let shown = again.listed(&ann.user_id)["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(contents(&shown), ["m5", "m6", "m7"]);
    assert_eq!(
        contents(
            again.listed(&bob.user_id)["messages"]
                .as_array()
                .expect("own")
        ),
        ["note to self"]
    );
    let oldest = shown[0]["id"].as_str().expect("id");
    let ack = again
        .client
        .ask(
            "fetch messages",
            json!({ "with": ann.user_id, "before": oldest }),
        )
        .await;
    assert_eq!(
        contents(ack["messages"].as_array().expect("page")),
        ["m0", "m1", "m2", "m3", "m4"]
    );
    assert_eq!(ack["more"], false);
}

on_standalone_and_cluster!(
    pages_walk_a_conversation_back_to_its_start,
    history_on_connect_caps_users_and_pages_reach_the_rest,
    a_conversation_is_indexed_from_its_first_page_or_read_mark_on,
);

/// A history the Node server wrote (no ids), continued on this server: pages go through the
/// new messages, then the old ones by their `legacy:<n>` addresses; the `users` of the default
/// setting serves the old ones as stored, with HISTORY_ON_CONNECT with their addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_the_node_server_wrote_is_paged_by_legacy_addresses() {
    const SESSION: &str = "1f2e3d4c5b6a7980";
    const USER: &str = "a1b2c3d4e5f60718";
    const PEER_SESSION: &str = "ffffffffffffffff";
    const PEER: &str = "0918273645abcdef";
    const OTHER: &str = "00000000000000aa";
    let redis = TestRedis::start().await;
    redis.store_offline_session(SESSION, USER, "legacy").await;
    redis
        .store_offline_session(PEER_SESSION, PEER, "old friend")
        .await;
    redis
        .store_offline_session("eeeeeeeeeeeeeeee", OTHER, "other")
        .await;
    let mut conn = redis.conn().await;
    let mut old = Vec::new();
    for i in 0..7 {
        let (from, to) = if i % 2 == 0 {
            (PEER, USER)
        } else {
            (USER, PEER)
        };
        old.push(json!({ "content": format!("old{i}"), "from": from, "to": to }));
        // Another conversation in between: its entries count in the addresses too.
        let other = json!({ "content": "other", "from": OTHER, "to": USER });
        for entry in [&old[i], &other] {
            let _: () = conn
                .rpush(format!("messages:{USER}"), entry.to_string())
                .await
                .expect("RPUSH");
        }
    }
    let app = node(&redis, None).await;
    let user = TestClient::join_with(&app, json!({ "sessionID": SESSION })).await;
    assert_eq!(
        user.listed(PEER)["messages"],
        json!(old),
        "served as stored by default"
    );
    let peer = TestClient::join_with(&app, json!({ "sessionID": PEER_SESSION })).await;
    for i in 0..4 {
        user.send_to(PEER, &format!("new{i}")).await;
    }

    let (all, _) = walk(&user, PEER, 3).await;

    let mut expected: Vec<String> = (0..7).map(|i| format!("old{i}")).collect();
    expected.extend((0..4).map(|i| format!("new{i}")));
    assert_eq!(contents(&all), expected);
    assert_eq!(
        all[6]["id"], "legacy:2",
        "old6, the newest but one id-less entry (other is 1)"
    );
    assert_eq!(all[0]["id"], "legacy:14");
    // Walking again (the start is known by now) gives the same.
    assert_eq!(walk(&user, PEER, 4).await.0, all);
    // The peer's own history holds only the new ones.
    assert_eq!(
        contents(&walk(&peer, USER, 3).await.0),
        ["new0", "new1", "new2", "new3"]
    );

    let capped = node(&redis, Some(2)).await;
    let again = TestClient::join_with(&capped, json!({ "sessionID": SESSION })).await;
    let other = again.listed(OTHER);
    assert_eq!(other["messages"][1]["id"], "legacy:1");
    let ack = again
        .client
        .ask(
            "fetch messages",
            json!({ "with": OTHER, "before": "legacy:3", "limit": 100 }),
        )
        .await;
    assert_eq!(ack["messages"].as_array().map(Vec::len), Some(5), "{ack}");
    assert_eq!(ack["more"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_is_refused_with_its_reason_and_the_socket_stays() {
    let redis = TestRedis::start().await;
    let app = node(&redis, None).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    let with = bob.user_id.as_str();
    let cases = [
        (
            json!("bob"),
            "invalid payload: expected an object { with, before?, limit? }",
        ),
        (
            json!([with]),
            "invalid payload: expected an object { with, before?, limit? }",
        ),
        (json!({}), "with must be a userID"),
        (json!({ "with": "bob smith" }), "with must be a userID"),
        (
            json!({ "with": with, "before": 1 }),
            "before must be a messageID",
        ),
        (
            json!({ "with": with, "before": "message-1" }),
            "before must be a messageID",
        ),
        (
            json!({ "with": with, "before": "legacy:0" }),
            "before must be a messageID",
        ),
        (
            json!({ "with": with, "limit": 0 }),
            "limit must be an integer from 1 to 100",
        ),
        (
            json!({ "with": with, "limit": 101 }),
            "limit must be an integer from 1 to 100",
        ),
        (
            json!({ "with": with, "limit": "5" }),
            "limit must be an integer from 1 to 100",
        ),
    ];
    for (payload, error) in cases {
        let ack = ann.client.ask("fetch messages", payload.clone()).await;
        assert_eq!(ack, json!({ "error": error }), "{payload}");
    }
    assert!(ann.send_to(with, "still here").await["message"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_share_the_socket_s_rate_limit() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.001;
    settings.rate_limit_burst = 2.0;
    let app = spawn_app_with(settings).await;
    let ann = TestClient::join(&app, "ann").await;
    let ask = || {
        ann.client
            .ask("fetch messages", json!({ "with": ann.user_id }))
    };
    assert!(ask().await["messages"].is_array());
    assert!(ask().await["messages"].is_array());
    assert_eq!(ask().await, json!({ "error": "rate limited, slow down" }));
}

/// The index is one sorted set per pair of users, bounded like the histories: trimmed back to
/// HISTORY_CAP once it holds 64 more (a removal per 64 messages, not one per message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_index_keeps_at_most_history_cap_and_64_messages() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    settings.history_cap = 5;
    let app = spawn_app_with(settings).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    let sent: Vec<String> = (0..75).map(|i| format!("m{i}")).collect();
    ann.send_to(&bob.user_id, &sent[0]).await;
    // The first page builds the index (standalone Redis): every message after goes in it.
    walk(&ann, &bob.user_id, 3).await;
    for content in &sent[1..] {
        ann.send_to(&bob.user_id, content).await;
    }
    let key = conversation_key(&ann.user_id, &bob.user_id);
    let stored: usize = redis.conn().await.zcard(&key).await.expect("ZCARD");
    // Trimmed to 5 at the 70th message, 5 more since.
    assert_eq!(stored, 10);
    let ttl: i64 = redis.conn().await.ttl(&key).await.expect("TTL");
    assert!(ttl > 0, "the index expires with the histories");

    let (all, _) = walk(&ann, &bob.user_id, 3).await;
    assert_eq!(contents(&all), sent[65..]);
}

/// One rule on a standalone Redis and on a cluster: a conversation has no index until a page
/// or a read mark needs one (a message then costs two writes, not three): the first page is
/// served from the caller's history and builds the index from it, expiring no later than a
/// history; every message after is added to it. A read mark builds it the same way.
async fn a_conversation_is_indexed_from_its_first_page_or_read_mark_on(redis: TestRedis) {
    let redis = &redis;
    let app = node(redis, None).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    let mut sent = Vec::new();
    for i in 0..4 {
        let content = format!("m{i}");
        let (from, to) = if i % 2 == 0 {
            (&ann, &bob)
        } else {
            (&bob, &ann)
        };
        assert!(from.send_to(&to.user_id, &content).await["message"].is_object());
        sent.push(content);
        // Carol's message spells Ann's and Bob's fields in its content: it stays out.
        let forged = format!(r#""from":"{}","to":"{}""#, bob.user_id, ann.user_id);
        carol.send_to(&ann.user_id, &forged).await;
    }
    let key = conversation_key(&ann.user_id, &bob.user_id);
    let members = async |key: &str| -> Vec<String> {
        redis.conn().await.zrange(key, 0, -1).await.expect("ZRANGE")
    };
    let exists =
        async |key: &str| -> bool { redis.conn().await.exists(key).await.expect("EXISTS") };
    assert!(!exists(&key).await, "no index before any page");

    let (all, _) = walk(&bob, &ann.user_id, 3).await;
    assert_eq!(contents(&all), sent, "the first pages, from bob's history");
    let indexed = members(&key).await;
    let messages: Vec<&String> = indexed.iter().filter(|m| !m.starts_with('!')).collect();
    assert_eq!(
        messages.len(),
        4,
        "the conversation's messages only: {indexed:?}"
    );
    let ttl: i64 = redis.conn().await.ttl(&key).await.expect("TTL");
    let message_ttl = test_settings(redis).message_ttl().as_secs() as i64;
    assert!(ttl > 0 && ttl <= message_ttl, "{ttl} vs {message_ttl}");

    ann.send_to(&bob.user_id, "m4").await;
    sent.push("m4".into());
    let messages = members(&key).await;
    assert_eq!(
        messages.iter().filter(|m| !m.starts_with('!')).count(),
        5,
        "the next message went into the index: {messages:?}"
    );
    for (me, with) in [(&ann, &bob), (&bob, &ann)] {
        let (all, _) = walk(me, &with.user_id, 2).await;
        assert_eq!(contents(&all), sent);
    }

    // A read mark of a conversation without an index: checked in the history, then indexed.
    let carols = conversation_key(&ann.user_id, &carol.user_id);
    assert!(!exists(&carols).await);
    let newest = redis.history(&ann.user_id).await;
    let newest_from_carol = newest
        .iter()
        .rev()
        .find(|m| m["from"] == carol.user_id.as_str())
        .and_then(|m| m["id"].as_str())
        .expect("a message from carol")
        .to_owned();
    let ack = ann
        .client
        .ask(
            "messages read",
            json!({ "with": carol.user_id, "upTo": newest_from_carol }),
        )
        .await;
    assert!(ack.get("error").is_none(), "{ack}");
    let carols = members(&carols).await;
    assert_eq!(
        carols.iter().filter(|m| !m.starts_with('!')).count(),
        4,
        "carol's four messages: {carols:?}"
    );
}

/// `HISTORY_ON_CONNECT` caps `users` in the `contacts` scope too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_connect_caps_users_in_the_contacts_scope() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    settings.history_on_connect = HistoryOnConnect(Some(2));
    settings.users_scope = privmsg::settings::UsersScope::Contacts;
    let app = spawn_app_with(settings).await;
    let ann = TestClient::join(&app, "ann").await;
    let bob = TestClient::join(&app, "bob").await;
    for i in 0..5 {
        ann.send_to(&bob.user_id, &format!("m{i}")).await;
    }

    let again = TestClient::join_with(&app, json!({ "sessionID": bob.session_id })).await;

    let shown = again.listed(&ann.user_id)["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(contents(&shown), ["m3", "m4"]);
    assert_eq!(
        again.listed(&ann.user_id)["unread"],
        5,
        "counted on the whole history"
    );
}
