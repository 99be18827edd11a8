//! Redis replicas: the helpers that cut a replica off really keep writes from it, on a
//! standalone master and on a Redis Cluster; `REDIS_WAIT_REPLICAS` holds acks for them.

use redis::AsyncCommands;

use crate::helpers::{
    TestApp, TestClient, TestCluster, TestRedis, TestReplica, connected_replicas, eventually,
    spawn_app_with, test_settings,
};

/// REDIS_WAIT_REPLICAS=1 on a master with one replica, two nodes: a message is acked and
/// delivered while the replica is linked (and the replica holds it by then); with the replica
/// cut off it is refused "storage unavailable", stored nowhere, delivered nowhere, and
/// `/readyz` says why; with the replica back, messages are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_message_is_kept_only_once_a_replica_holds_it() {
    let master = TestRedis::start_durable().await;
    let replica = TestReplica::start(&master, true).await;
    let mut settings = test_settings(&master);
    settings.redis_wait_replicas = 1;
    let node = spawn_app_with(settings.clone()).await;
    let other = spawn_app_with(settings).await;
    let alice = TestClient::join(&node, "alice").await;
    let mut bob = TestClient::join(&other, "bob").await;
    let mut on_replica = replica.conn().await;

    let ack = alice.send_to(&bob.user_id, "kept").await;
    assert!(ack.get("message").is_some(), "{ack}");
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "kept"
    );
    // Acknowledged after WAIT: the replica holds it already, no waiting needed.
    let held: Vec<String> = on_replica
        .lrange(format!("messages:{}", bob.user_id), 0, -1)
        .await
        .expect("LRANGE on the replica");
    assert_eq!(
        held.len(),
        1,
        "the replica holds the acked message: {held:?}"
    );

    replica.cut().await;
    let ack = alice.send_to(&bob.user_id, "refused").await;
    let error = ack["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("storage unavailable"), "{ack}");
    for user in [&alice.user_id, &bob.user_id] {
        assert_eq!(contents(&master, user).await, ["kept"], "stored nowhere");
    }
    let why = eventually(
        async || match readyz(&node).await {
            (503, body) if body.contains("replicas") => Some(body),
            _ => None,
        },
        "/readyz to say the replica is missing",
    )
    .await;
    println!("/readyz while cut off: {why}");

    back_in_sync(&replica, &node).await;
    let ack = alice.send_to(&bob.user_id, "back").await;
    assert!(ack.get("message").is_some(), "{ack}");
    // The same channel, in order: the refused message would have come first.
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "back"
    );
    for user in [&alice.user_id, &bob.user_id] {
        assert_eq!(contents(&master, user).await, ["kept", "back"]);
    }
}

async fn contents(redis: &TestRedis, user: &str) -> Vec<String> {
    let history = redis.history(user).await;
    history
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A standalone master seen short of replicas refuses at once: with REDIS_WAIT_TIMEOUT_MS at
/// its 60 s maximum, a message sent once `/readyz` says the replica is gone is refused well
/// before the test client's ack timeout (a `WAIT` sent anyway would hold it the whole minute),
/// and stored nowhere; with the replica back, messages are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_known_short_of_replicas_refuses_at_once() {
    let master = TestRedis::start_durable().await;
    let replica = TestReplica::start(&master, true).await;
    let mut settings = test_settings(&master);
    settings.redis_wait_replicas = 1;
    settings.redis_wait_timeout_ms = 60_000;
    let node = spawn_app_with(settings).await;
    let alice = TestClient::join(&node, "alice").await;
    let bob = TestClient::join(&node, "bob").await;

    replica.cut().await;
    // The watcher's count, with no message sent: what the node knows before the next batch.
    eventually(
        async || matches!(readyz(&node).await, (503, body) if body.contains("replicas")),
        "/readyz to say the replica is missing",
    )
    .await;
    let ack = alice.send_to(&bob.user_id, "refused").await;
    let error = ack["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("storage unavailable"), "{ack}");
    for user in [&alice.user_id, &bob.user_id] {
        assert!(contents(&master, user).await.is_empty(), "stored nowhere");
    }

    back_in_sync(&replica, &node).await;
    let ack = alice.send_to(&bob.user_id, "back").await;
    assert!(ack.get("message").is_some(), "{ack}");
    for user in [&alice.user_id, &bob.user_id] {
        assert_eq!(contents(&master, user).await, ["back"]);
    }
}

/// Restores `replica`'s link and waits until `node` is ready again (its watcher saw it).
async fn back_in_sync(replica: &TestReplica, node: &TestApp) {
    replica.restore().await;
    eventually(
        async || readyz(node).await.0 == 200,
        "/readyz to be ready again",
    )
    .await;
}

/// `/readyz`'s status and body.
async fn readyz(node: &TestApp) -> (u16, String) {
    match reqwest::get(format!("{}/readyz", node.url())).await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(err) => (0, err.to_string()),
    }
}

/// A write made while the replica is cut off reaches it only once the link is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_replica_gets_no_write_until_restored() {
    let master = TestRedis::start_durable().await;
    let replica = TestReplica::start(&master, true).await;
    let mut on_master = master.conn().await;
    let mut on_replica = replica.conn().await;

    replica.cut().await;
    let _: () = on_master.set("written-while-cut", "1").await.expect("SET");
    // WAIT is the master's own word that no replica took the write.
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(100)
        .query_async(&mut on_master)
        .await
        .expect("WAIT");
    assert_eq!(
        acked, 0,
        "no replica acknowledged a write made while cut off"
    );
    let held: Option<String> = on_replica.get("written-while-cut").await.expect("GET");
    assert_eq!(held, None, "the cut-off replica holds the write");

    replica.restore().await;
    eventually(
        async || {
            let held: Option<String> = on_replica.get("written-while-cut").await.ok()?;
            held.map(|_| ())
        },
        "the restored replica to get the write",
    )
    .await;
}

/// On a cluster, a master cut off from its replica counts none until restored, and the
/// cluster stays whole meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_cut_off_from_its_replica_counts_none_until_restored() {
    let cluster = TestCluster::start(1).await;
    let master = cluster.masters().await[0].port;
    cluster.cut_replicas(master).await;
    cluster.serving().await;
    cluster.restore_replicas(master).await;
    eventually(
        async || connected_replicas(master).await == Ok(1),
        "the replica back",
    )
    .await;
}
