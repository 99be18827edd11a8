//! A Redis Cluster of three masters with a replica each, two nodes, messages with acks flowing
//! from Alice (node A) to Bob (node B): the master of Bob's history is cut off from its replica
//! (so that what it takes from then on reaches no replica, as when replication lags), takes some
//! more messages, and is SIGKILLed. The cluster promotes the replica on its own (the link was
//! down for far less than `cluster-node-timeout` times `cluster-replica-validity-factor`, so no
//! `CLUSTER FAILOVER` is needed). Both nodes must serve again, with cross-node delivery both
//! ways, within 15 s of the kill; the killed master comes back as a replica.
//!
//! With REDIS_WAIT_REPLICAS=1 the messages sent while the replica is cut off are refused, and
//! no acked message is missing from the new master's history; the new master has no replica
//! until the killed one comes back as its replica, so that comes first. Without it, the
//! messages acked while the replica was cut off are lost with the master: the test prints how
//! many (informational).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::{
    Connected, TestClient, TestCluster, eventually_within, spawn_app_with, test_settings,
};

/// How soon after the kill both nodes must deliver across again.
const RECOVERY: Duration = Duration::from_secs(15);
/// Messages acked before the cut, and sent after it (the master's last moments without a
/// replica).
const BEFORE_CUT: usize = 30;
const AFTER_CUT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_with_its_replica_behind_is_followed_and_its_losses_counted() {
    failover(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_no_acked_message_is_lost_when_a_master_is_killed() {
    failover(1).await;
}

async fn failover(wait_replicas: u32) {
    let mut cluster = TestCluster::start(1).await;
    let mut settings = test_settings(&cluster.redis);
    settings.redis_wait_replicas = wait_replicas;
    let node_a = spawn_app_with(settings.clone()).await;
    let node_b = spawn_app_with(settings).await;
    let mut alice = TestClient::join(&node_a, "alice").await;
    let mut bob = TestClient::join(&node_b, "bob").await;
    let slot = cluster.slot(&format!("messages:{}", bob.user_id)).await;
    let master = cluster.owner(slot).await;

    // Acked message ids, and how many were sent since the cut (None: not cut yet).
    let acked = Mutex::new((Vec::<String>::new(), None::<usize>));
    let flow = async {
        for i in 0.. {
            let payload = json!({ "content": format!("flow-{i}"), "to": bob.user_id });
            let ack = alice.client.try_send(payload).await;
            let mut acked = acked.lock().expect("the acks");
            if let Some(id) = ack.as_ref().and_then(|a| a["message"]["id"].as_str()) {
                acked.0.push(id.to_owned());
            }
            acked.1 = acked.1.map(|n| n + 1);
            if acked.1.is_some_and(|n| n >= AFTER_CUT) {
                return;
            }
        }
    };
    let disrupt = async {
        let count = || acked.lock().map(|a| a.0.len()).unwrap_or_default();
        eventually_within(RECOVERY, async || count() >= BEFORE_CUT, "messages acked").await;
        cluster.cut_replicas(master).await;
        if let Ok(mut acked) = acked.lock() {
            acked.1 = Some(0);
        }
    };
    tokio::join!(flow, disrupt);
    cluster.crash(master).await;
    let killed = Instant::now();

    let new_master = cluster.promoted(slot, master).await;
    let promoted = killed.elapsed();
    if wait_replicas > 0 {
        // Until the new master has a replica, every message is refused.
        cluster.start_node(master).await;
    }
    let mut acked = acked.into_inner().expect("the acks").0;
    let to_bob = deliver(&alice, &mut bob, "after-to-bob", killed, &mut acked).await;
    let to_alice = deliver(&bob, &mut alice, "after-to-alice", killed, &mut acked).await;
    assert!(
        !alice.client.was_dropped() && !bob.client.was_dropped(),
        "a socket dropped"
    );

    let kept = cluster.redis.history_ids(&bob.user_id).await;
    let lost: Vec<&String> = acked.iter().filter(|id| !kept.contains(id)).collect();
    println!(
        "master {master} killed, replica {new_master} promoted after {promoted:?}; delivery \
         back after {to_bob:?} (to Bob) and {to_alice:?} (to Alice); {} of {} acked \
         messages lost (REDIS_WAIT_REPLICAS={wait_replicas})",
        lost.len(),
        acked.len()
    );
    if wait_replicas > 0 {
        assert!(
            lost.is_empty(),
            "acked, then lost with the master: {lost:?}"
        );
    } else {
        cluster.start_node(master).await;
    }
    cluster.settled().await;
}

/// `from` sends to `to` until one message is acked and reaches `to`, within [`RECOVERY`] of
/// `since`; returns when it did.
async fn deliver(
    from: &Connected,
    to: &mut Connected,
    tag: &str,
    since: Instant,
    acked: &mut Vec<String>,
) -> Duration {
    let mut attempt = 0;
    eventually_within(
        RECOVERY.saturating_sub(since.elapsed()),
        async || {
            attempt += 1;
            let content = format!("{tag}-{attempt}");
            let payload = json!({ "content": content, "to": to.user_id });
            let ack = from.client.try_send(payload).await?;
            acked.push(ack["message"]["id"].as_str()?.to_owned());
            loop {
                let got = (to.client)
                    .wait_for_within("private message", Duration::from_millis(300))
                    .await?;
                if got["content"] == content.as_str() {
                    return Some(since.elapsed());
                }
            }
        },
        &format!("{tag}: a message to cross nodes"),
    )
    .await
}
