//! `DELETE /api/users/{userID}`: erasure, checked key by key in Redis. Afterwards nothing
//! stored names the user but the messages it received (they stay in their senders' histories
//! and conversations), its socket is closed, and it is listed, found and restored nowhere.

use privmsg::settings::UsersScope;
use serde_json::{Value, json};

use crate::{
    helpers::{
        ApiClient, TestClient, TestRedis, Trace, api_settings, eventually, in_path, jwt_mode,
        spawn_app_with,
    },
    on_standalone_and_cluster,
};

/// Whether `json` is a stored message (or an index member, `<id> <JSON>`) sent by `from`.
fn sent_by(element: &str, from: &str) -> bool {
    let json = match element.split_once(' ') {
        Some((_, json)) if !element.starts_with('{') => json,
        _ => element,
    };
    serde_json::from_str::<Value>(json).is_ok_and(|message| message["from"] == from)
}

async fn erasure_leaves_nothing_of_the_user_but_what_it_received(redis: TestRedis) {
    let mut settings = api_settings(&redis);
    settings.users_scope = UsersScope::Contacts;
    let one = spawn_app_with(settings.clone()).await;
    let two = spawn_app_with(settings).await;
    let mut alice = TestClient::join(&one, "alice").await;
    let mut bob = TestClient::join(&two, "bob").await;
    let carol = TestClient::join(&one, "carol").await;
    let (a, b, c) = (
        alice.user_id.clone(),
        bob.user_id.clone(),
        carol.user_id.clone(),
    );
    let to_bob = alice.send_to(&b, "to bob").await["message"].clone();
    let from_bob = bob.send_to(&a, "from bob").await["message"].clone();
    alice.send_to(&c, "to carol").await;
    let from_carol = carol.send_to(&a, "from carol").await["message"].clone();
    alice.send_to(&a, "a note to myself").await;
    for (who, with, up_to) in [(&alice, &b, &from_bob), (&bob, &a, &to_bob)] {
        let read = json!({ "with": with, "upTo": up_to["id"] });
        assert_eq!(who.client.ask("messages read", read).await, json!({}));
    }
    // Pages build the conversations' indexes (on a standalone Redis at first use).
    for (who, with) in [(&bob, &a), (&carol, &a), (&alice, &b)] {
        who.client
            .ask("fetch messages", json!({ "with": with }))
            .await;
    }
    let api = ApiClient::new(&one);
    let path = format!("/users/{}", in_path(&a));

    let answer = api.delete(&path).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, json!({}));
    eventually(async || alice.client.was_dropped(), "alice's socket closed").await;
    assert_eq!(bob.client.expect("user disconnected").await, json!(a));
    let left: Vec<Trace> = redis
        .traces_of(&a)
        .await
        .into_iter()
        .filter(|trace| {
            let received = trace.element.as_deref().is_some_and(|element| {
                (trace.key == format!("messages:{b}") && sent_by(element, &b))
                    || (trace.key == format!("messages:{c}") && sent_by(element, &c))
                    || (trace.key.starts_with("privmsg:conversation:")
                        && (sent_by(element, &b) || sent_by(element, &c)))
            });
            let index_name =
                trace.key.starts_with("privmsg:conversation:") && trace.element.is_none();
            !received && !index_name
        })
        .collect();
    assert!(left.is_empty(), "left of the user: {left:#?}");
    assert_eq!(redis.traces_of(&alice.session_id).await, []);
    assert_eq!(redis.history(&b).await, std::slice::from_ref(&from_bob));
    assert_eq!(redis.history(&c).await, [from_carol]);
    let page = bob.client.ask("fetch messages", json!({ "with": a })).await;
    assert_eq!(page["messages"], json!([from_bob]));
    // Listed, found and known nowhere.
    let bob_again = TestClient::join_with(&two, json!({ "sessionID": bob.session_id })).await;
    assert!(
        !bob_again.users.to_string().contains(&a),
        "{}",
        bob_again.users
    );
    let found = carol
        .client
        .ask("search users", json!({ "query": "alice" }))
        .await;
    assert_eq!(found, json!({ "users": [] }));
    assert_eq!(api.get(&path).await.status, 404);
    assert_eq!(api.delete(&path).await.status, 404);
    // And restored nowhere: the old sessionID leads to no session.
    restores_nothing(&one, &alice.session_id).await;
}

/// The old sessionID leads to no session: refused, or with `AUTH=jwt` (a valid token names the
/// user anew, the identity provider's word) a new session.
pub async fn restores_nothing(app: &crate::helpers::TestApp, session_id: &str) {
    let mut again = TestClient::connect(app, json!({ "sessionID": session_id })).await;
    if jwt_mode() {
        let session = again.expect("session").await;
        assert_ne!(session["sessionID"], session_id);
    } else {
        let error = again.expect_none_before("session", "error").await;
        assert!(error.to_string().contains("invalid username"), "{error}");
    }
}

/// A failure part-way (here a peer's history Redis refuses to read: WRONGTYPE) answers 503;
/// the user is still known to the erasure, and running it again once Redis is repaired
/// finishes the job.
async fn an_erasure_that_failed_part_way_finishes_when_run_again(redis: TestRedis) {
    let app = spawn_app_with(api_settings(&redis)).await;
    let alice = TestClient::join(&app, "alice").await;
    let bob = TestClient::join(&app, "bob").await;
    let carol = TestClient::join(&app, "carol").await;
    let (a, b, c) = (
        alice.user_id.clone(),
        bob.user_id.clone(),
        carol.user_id.clone(),
    );
    alice.send_to(&b, "to bob").await;
    alice.send_to(&c, "to carol").await;
    let from_bob = bob.send_to(&a, "from bob").await["message"].clone();
    redis.break_history(&c).await;
    let api = ApiClient::new(&app);
    let path = format!("/users/{}", in_path(&a));

    let failed = api.delete(&path).await;
    // Repaired: the broken key goes (it held nothing of the user's).
    let () = redis::AsyncCommands::del(&mut redis.conn().await, format!("messages:{c}"))
        .await
        .expect("DEL");
    let again = api.delete(&path).await;

    assert_eq!(failed.status, 503, "{failed:?}");
    assert_eq!(failed.body, json!({ "error": "storage unavailable" }));
    assert_eq!(again.status, 200, "{again:?}");
    let left: Vec<Trace> = redis
        .traces_of(&a)
        .await
        .into_iter()
        .filter(|trace| {
            let index = trace.key.starts_with("privmsg:conversation:");
            let index_name = index && trace.element.is_none();
            let received = (trace.key == format!("messages:{b}") || index)
                && trace.element.as_deref().is_some_and(|e| sent_by(e, &b));
            !received && !index_name
        })
        .collect();
    assert!(left.is_empty(), "left of the user: {left:#?}");
    assert_eq!(redis.history(&b).await, std::slice::from_ref(&from_bob));
    assert_eq!(api.delete(&path).await.status, 404);
}

on_standalone_and_cluster!(
    erasure_leaves_nothing_of_the_user_but_what_it_received,
    an_erasure_that_failed_part_way_finishes_when_run_again,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_all_scope_an_erased_user_leaves_the_erasing_nodes_users_at_once() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(api_settings(&redis)).await;
    let alice = TestClient::join(&app, "alice").await;
    let carol = TestClient::join(&app, "carol").await;
    assert!(carol.users.to_string().contains(&alice.user_id));

    let path = format!("/users/{}", in_path(&alice.user_id));
    assert_eq!(ApiClient::new(&app).delete(&path).await.status, 200);

    let again = TestClient::join_with(&app, json!({ "sessionID": carol.session_id })).await;
    assert!(
        !again.users.to_string().contains(&alice.user_id),
        "{}",
        again.users
    );
}

/// `erase_sent.lua` on a history and on an index: every message the user sent goes (with id
/// or without, as the Node server wrote them), whatever its userID holds (`"`, `\`, `|`),
/// the peer's messages and what is not a message stay, and a second run removes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_sent_messages_twice_removes_each_once_and_nothing_else() {
    let redis = TestRedis::start().await;
    let mut conn = redis.conn().await;
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-scripts/erase_sent.lua"
    ))
    .expect("the script");
    let user = r#"auth0|a"b\c"#;
    let mark = format!("!{user}");
    let sent = json!({ "content": "mine", "from": user, "to": "p", "id": "2" }).to_string();
    let legacy = json!({ "content": "node", "from": user, "to": "p" }).to_string();
    let theirs = json!({ "content": user, "from": "p", "to": user, "id": "1" }).to_string();
    let broken = format!("{{not json {user}");
    redis::cmd("RPUSH")
        .arg("messages:p")
        .arg(&[&legacy, &theirs, &sent, &broken, &sent])
        .query_async::<()>(&mut conn)
        .await
        .expect("RPUSH");
    let members = [format!("1 {theirs}"), format!("2 {sent}"), mark.clone()];
    for member in &members {
        redis::cmd("ZADD")
            .arg("index")
            .arg(0)
            .arg(member)
            .query_async::<()>(&mut conn)
            .await
            .expect("ZADD");
    }
    let erase = async |conn: &mut privmsg::store::Conn, key: &str, kind: &str| {
        redis::cmd("EVAL")
            .arg(&source)
            .arg(1)
            .arg(key)
            .arg(kind)
            .arg(user)
            .arg(&mark)
            .query_async::<i64>(conn)
            .await
            .expect("EVAL")
    };

    let removed = [
        erase(&mut conn, "messages:p", "list").await,
        erase(&mut conn, "messages:p", "list").await,
        erase(&mut conn, "index", "index").await,
        erase(&mut conn, "index", "index").await,
    ];

    assert_eq!(removed, [3, 0, 2, 0]);
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg("messages:p")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("LRANGE");
    assert_eq!(history, [theirs.clone(), broken]);
    let index: Vec<String> = redis::cmd("ZRANGE")
        .arg("index")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE");
    assert_eq!(index, [format!("1 {theirs}")]);
}
