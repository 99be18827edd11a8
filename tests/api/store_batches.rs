//! On a standalone Redis, messages that wait together go to Redis in one script call
//! (`store_messages.lua`): each is still stored, refused and delivered on its own. On a
//! cluster they start their writes together, and still wait only for their own.

use privmsg::settings::UsersScope;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClient, TestCluster, TestRedis, conversation_key, eventually, metric, spawn_app,
    spawn_app_with, test_settings,
};

/// Two messages that wait for the same call share it; the one whose recipient's history
/// cannot take it is refused and stored nowhere, the other is stored in both histories and
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sharing_a_call_are_stored_or_refused_each_on_its_own() {
    sharing_a_call(UsersScope::All).await;
}

/// The same in the `contacts` scope (its own script): the refused message makes no contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_contacts_scope_messages_sharing_a_call_are_stored_or_refused_each_on_its_own() {
    sharing_a_call(UsersScope::Contacts).await;
}

async fn sharing_a_call(scope: UsersScope) {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.users_scope = scope;
    let node = spawn_app_with(settings).await;
    let alice = TestClient::join(&node, "alice").await;
    let bob = TestClient::join(&node, "bob").await;
    let carol = TestClient::join(&node, "carol").await;
    let mut dave = TestClient::join(&node, "dave").await;
    let erin = TestClient::join(&node, "erin").await;
    let mut conn = redis.conn().await;
    redis.break_history(&bob.user_id).await;
    // Their conversation indexed already (as a first page would leave it), so that the refused
    // message would reach the index if its undo failed.
    let index = conversation_key(&alice.user_id, &bob.user_id);
    redis::cmd("ZADD")
        .arg(&index)
        .arg(0)
        .arg(format!("!{}", alice.user_id))
        .query_async::<()>(&mut conn)
        .await
        .expect("ZADD");
    let (calls, messages) = batches(&node).await;
    // Redis takes no write for 2 s: the batch task sends Erin's message and waits for Redis,
    // and the two sent meanwhile wait for the next call together, whatever the timing.
    pause_writes(&mut conn).await;

    let (first, (refused, accepted)) = tokio::join!(erin.send_to(&carol.user_id, "first"), async {
        eventually(
            async || batches(&node).await == (calls + 1, messages + 1),
            "Erin's message on its way to Redis, alone",
        )
        .await;
        tokio::join!(
            alice.send_to(&bob.user_id, "lost"),
            carol.send_to(&dave.user_id, "kept"),
        )
    });

    assert!(first.get("message").is_some(), "{first}");
    assert_eq!(
        refused["error"], "storage unavailable, message not sent",
        "{refused}"
    );
    assert!(accepted.get("message").is_some(), "{accepted}");
    let (calls_after, messages_after) = batches(&node).await;
    assert_eq!(
        (calls_after - calls, messages_after - messages),
        (2, 3),
        "Erin's message alone, then the two others in one call"
    );
    assert_eq!(
        dave.client.expect("private message").await["content"],
        "kept"
    );
    assert!(
        redis.history(&alice.user_id).await.is_empty(),
        "the refused one"
    );
    let index: u64 = redis::cmd("ZCARD")
        .arg(&index)
        .query_async(&mut conn)
        .await
        .expect("ZCARD");
    assert_eq!(
        index, 1,
        "the refused one is not in its conversation's index"
    );
    let contacts: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("privmsg:contacts:{}", alice.user_id))
        .query_async(&mut conn)
        .await
        .expect("SMEMBERS");
    assert!(
        contacts.is_empty(),
        "the refused one made contacts: {contacts:?}"
    );
    let contents = async |user: &str| -> Vec<Value> {
        let history = redis.history(user).await;
        history.iter().map(|m| m["content"].clone()).collect()
    };
    assert_eq!(
        contents(&carol.user_id).await,
        [json!("first"), json!("kept")]
    );
    assert_eq!(contents(&dave.user_id).await, [json!("kept")]);
}

/// Makes the Redis behind `conn` take no write for 2 s (reads go on).
async fn pause_writes(conn: &mut impl redis::aio::ConnectionLike) {
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("WRITE")
        .query_async::<()>(conn)
        .await
        .expect("CLIENT PAUSE");
}

/// The number of store calls and of messages they carried, from `/metrics`.
async fn batches(node: &TestApp) -> (u64, u64) {
    (
        metric(node, "privmsg_store_batch_messages_count").await,
        metric(node, "privmsg_store_batch_messages_sum").await,
    )
}

/// On a Redis Cluster the messages that arrive together start their writes together
/// (`store/cluster_batch.rs`), each batch on its own: a message whose master is slow holds
/// back only itself, not the messages of the batches after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_message_waiting_on_a_slow_master_holds_back_only_itself() {
    let cluster = TestCluster::start(0).await;
    let node = spawn_app(&cluster.redis).await;
    let alice = TestClient::join(&node, "alice").await;
    let bob = TestClient::join(&node, "bob").await;
    let masters_of = async |from: &str, to: &str| {
        let mut masters = Vec::new();
        // Its writes, and its publications (PUBLISH waits out a CLIENT PAUSE WRITE too).
        for key in [
            format!("messages:{from}"),
            format!("messages:{to}"),
            conversation_key(from, to),
            format!("socket.io-user#{from}"),
            format!("socket.io-user#{to}"),
        ] {
            masters.push(cluster.owner(cluster.slot(&key).await).await);
        }
        masters
    };
    let slow = cluster
        .owner(cluster.slot(&format!("messages:{}", bob.user_id)).await)
        .await;
    // Two users none of whose keys and channels sits on Bob's master.
    let mut pair = None;
    for i in 0..200 {
        let carol = TestClient::join(&node, &format!("carol{i}")).await;
        let dave = TestClient::join(&node, &format!("dave{i}")).await;
        if !masters_of(&carol.user_id, &dave.user_id)
            .await
            .contains(&slow)
        {
            pair = Some((carol, dave));
            break;
        }
    }
    let (carol, mut dave) = pair.expect("two users with no key on Bob's master");
    let (calls, messages) = batches(&node).await;
    // Until the other message is acknowledged: the held one cannot be answered before then,
    // however slow the machine (within its own 3 s bound, `cluster_append::APPEND_TIMEOUT`).
    let paused = cluster.pause_writes(slow).await;

    let held = alice.send_to(&bob.user_id, "held");
    tokio::pin!(held);
    let other = async {
        eventually(
            async || batches(&node).await == (calls + 1, messages + 1),
            "Alice's message started, alone",
        )
        .await;
        carol.send_to(&dave.user_id, "not held").await
    };
    let (first, other) = tokio::select! {
        biased;
        other = other => ("the other", other),
        held = &mut held => ("the held one", held),
    };
    paused.lift().await;

    assert_eq!(first, "the other", "acknowledged first: {other}");
    assert!(other.get("message").is_some(), "{other}");
    assert_eq!(
        dave.client.expect("private message").await["content"],
        "not held"
    );
    let held = held.await;
    assert!(held.get("message").is_some(), "{held}");
}
