//! The emitter's pub/sub connection heals like the node's own: after a Redis restart, and on
//! a cluster after the node it subscribed on crashed, a backend's emit reaches the user's
//! socket again without restarting the server.

use std::time::Duration;

use privmsg::{emitter::EmitterPublisher, metrics::Metrics, store::RedisPool};
use serde_json::json;

use crate::helpers::{
    Connected, TestApp, TestClient, TestCluster, TestRedis, eventually_within, metric, spawn_app,
};

/// How long after Redis is back (a cluster: after the crash, its failover included) an emit
/// must reach the socket again.
const RECOVERY: Duration = Duration::from_secs(30);

/// Publishes `notice` to `to` until one arrives (a publication before the node subscribed
/// again is lost, as any live delivery during an outage), within [`RECOVERY`].
async fn emits_reach_again(publisher: &EmitterPublisher, to: &mut Connected) {
    let mut attempt = 0;
    eventually_within(
        RECOVERY,
        async || {
            attempt += 1;
            let data = json!({ "attempt": attempt });
            // Refused while Redis (or the slot's master) is away: tried again.
            publisher
                .emit_to_user(&to.user_id, "notice", &data)
                .await
                .ok()?;
            // A live delivery takes milliseconds; past this, it was lost: publish again.
            let quick = Duration::from_millis(300);
            to.client.wait_for_within("notice", quick).await
        },
        "an emit to reach the socket after the outage",
    )
    .await;
}

fn publisher(redis: &TestRedis) -> EmitterPublisher {
    EmitterPublisher::new(RedisPool::new(&redis.target, 1, Metrics::new()).expect("a pool"))
}

async fn ready(node: &TestApp) -> bool {
    reqwest::get(format!("{}/readyz", node.url()))
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_an_emit_reaches_the_users_socket_again() {
    let mut redis = TestRedis::start_durable().await;
    let node = spawn_app(&redis).await;
    let mut alice = TestClient::join(&node, "alice").await;
    let publisher = publisher(&redis);
    emits_reach_again(&publisher, &mut alice).await;

    redis.stop().await;
    eventually_within(RECOVERY, async || !ready(&node).await, "readyz to say 503").await;
    redis.restart().await;

    emits_reach_again(&publisher, &mut alice).await;
    eventually_within(RECOVERY, async || ready(&node).await, "readyz to say 200").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_emitters_subscriptions_move_off_a_crashed_node() {
    let mut cluster = TestCluster::start(1).await;
    let node = spawn_app(&cluster.redis).await;
    let mut alice = TestClient::join(&node, "alice").await;
    let publisher = publisher(&cluster.redis);
    emits_reach_again(&publisher, &mut alice).await;

    // The emitter's connection starts on the first seed.
    let privmsg::store::RedisTarget::Cluster(seeds) = &cluster.redis.target else {
        unreachable!("a cluster")
    };
    let first: u16 = (seeds[0].rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .expect("a seed's port");
    cluster.crash(first).await;

    emits_reach_again(&publisher, &mut alice).await;
    let moved = "privmsg_emitter_pubsub_repairs_total{how=\"reconnect\"}";
    assert!(metric(&node, moved).await >= 1, "the connection moved");
}
