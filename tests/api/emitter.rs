//! The Socket.IO emitter's path, driven from Rust: `EmitterPublisher` (what the server API
//! uses) publishes in the emitter's own format, and every node applies it to its sockets. The
//! npm emitter itself is driven in `tests/e2e/emitter.test.mjs`.

use privmsg::{emitter::EmitterPublisher, metrics::Metrics, store::RedisPool};
use serde_json::json;

use crate::{
    helpers::{TestClient, TestRedis, spawn_app},
    on_standalone_and_cluster,
};

fn publisher(redis: &TestRedis) -> EmitterPublisher {
    let pool = RedisPool::new(&redis.target, 1, Metrics::new()).expect("a pool");
    EmitterPublisher::new(pool)
}

async fn an_emit_to_a_user_reaches_each_of_its_sockets_on_every_node_and_nobody_else(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice1 = TestClient::join(&node1, "alice").await;
    let mut alice2 = TestClient::join_with(&node2, json!({ "sessionID": alice1.session_id })).await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut carol = TestClient::join(&node1, "carol").await;
    let publisher = publisher(&redis);

    let data = json!({ "hello": 1, "list": [1, "two", null] });
    (publisher.emit_to_user(&alice1.user_id, "notice", &data))
        .await
        .expect("published");

    assert_eq!(alice1.client.expect("notice").await, data);
    assert_eq!(alice2.client.expect("notice").await, data);
    // Published after the notice, on the same connection: a notice for them would come first.
    for other in [&mut bob, &mut carol] {
        (publisher.emit_to_user(&other.user_id, "marker", &json!(1)))
            .await
            .expect("published");
        other.client.expect_none_before("notice", "marker").await;
    }
}

async fn a_disconnect_of_a_user_closes_each_of_its_sockets_on_every_node_and_no_other(
    redis: TestRedis,
) {
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice1 = TestClient::join(&node1, "alice").await;
    let mut alice2 = TestClient::join_with(&node2, json!({ "sessionID": alice1.session_id })).await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let publisher = publisher(&redis);

    (publisher.disconnect_user(&alice1.user_id))
        .await
        .expect("published");

    alice1.client.expect("close").await;
    alice2.client.expect("close").await;
    // Bob's socket on node 2 still receives, and was never closed.
    (publisher.emit_to_user(&bob.user_id, "still here", &json!(true)))
        .await
        .expect("published");
    assert_eq!(bob.client.expect("still here").await, json!(true));
    assert!(!bob.client.was_dropped());
}

on_standalone_and_cluster!(
    an_emit_to_a_user_reaches_each_of_its_sockets_on_every_node_and_nobody_else,
    a_disconnect_of_a_user_closes_each_of_its_sockets_on_every_node_and_no_other,
);

/// The adapter counts the nodes it waits for by the subscribers of its request channel
/// (`PUBSUB NUMSUB`): the emitter's requests on that channel must not make a node count twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_standalone_redis_each_node_subscribes_the_request_channel_once() {
    let redis = TestRedis::start().await;
    let (_node1, _node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut conn = redis.conn().await;
    let (_, subscribers): (String, u16) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("socket.io-request#/#")
        .query_async(&mut conn)
        .await
        .expect("NUMSUB answers");
    assert_eq!(subscribers, 2);
}
