//! Webhooks across failures: the node sending a delivery SIGKILLed (real processes), and Redis
//! restarted with pending work (its append-only file). Helpers: `webhooks.rs`.

use std::time::Duration;

use crate::{
    helpers::{NodeProcess, Receiver, TestClient, TestRedis, eventually_within},
    on_standalone_and_cluster,
    webhooks::{DELIVERED, SECRET, assert_signed, deliveries, gauge, node_after, queued},
};

fn env(receiver: &Receiver) -> [(&str, &str); 4] {
    [
        ("WEBHOOK_URL", receiver.url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_EVENTS", "message.created"),
        ("RATE_LIMIT_PER_SEC", "0"),
    ]
}

/// The receiver hangs on the first try; the node sending it is SIGKILLed mid-way; the other
/// node takes the delivery over once the lease lapses, with the same delivery id.
async fn a_killed_node_leaves_its_delivery_to_the_other(redis: TestRedis) {
    let receiver = Receiver::start().await;
    receiver.hang_next(1);
    let mut nodes = [
        NodeProcess::start(&redis, &env(&receiver)).await,
        NodeProcess::start(&redis, &env(&receiver)).await,
    ];
    let ann = TestClient::join(&nodes[0], "ann").await;
    let bob = TestClient::join(&nodes[1], "bob").await;
    ann.send_to(&bob.user_id, "through a crash").await;
    let hung = receiver.wait_for(1, DELIVERED).await;

    let mut holder = None;
    for (i, node) in nodes.iter().enumerate() {
        if gauge(node, "privmsg_webhook_in_flight").await == 1 {
            holder = Some(i);
        }
    }
    let holder = holder.expect("a node holds the hanging delivery");
    nodes[holder].kill().await;
    let other = &nodes[1 - holder];

    // The lease (15 s) lapses, then the other node claims and delivers it.
    let both = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(
        both[1].header("x-privmsg-delivery"),
        hung[0].header("x-privmsg-delivery")
    );
    assert_eq!(both[1].body, hung[0].body);
    assert_signed(&both[1]);
    eventually_within(
        DELIVERED,
        async || deliveries(other, "message.created", "delivered").await == 1,
        "the other node to count it delivered",
    )
    .await;
}

on_standalone_and_cluster!(a_killed_node_leaves_its_delivery_to_the_other);

/// A `message.unread` queued, then Redis restarted (its append-only file) before it is due:
/// it is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_work_survives_a_redis_restart() {
    let mut redis = TestRedis::start_durable().await;
    let receiver = Receiver::start().await;
    // Long enough for Redis to go and come back before it is due.
    let one = node_after(&redis, &receiver, "message.unread", 5).await;
    let two = node_after(&redis, &receiver, "message.unread", 5).await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;
    let sent = ann.send_to(&bob.user_id, "across a restart").await["message"].clone();
    assert_eq!(queued(&redis).await, 1);

    redis.stop().await;
    redis.restart().await;

    let got = receiver.wait_for(1, DELIVERED).await;
    assert_eq!(got[0].json()["data"]["message"], sent);
    assert_signed(&got[0]);
    eventually_within(
        DELIVERED,
        async || queued(&redis).await == 0,
        "the delivery removed",
    )
    .await;
}
