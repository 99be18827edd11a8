//! A Redis outage: no panic, no silent drop, no acknowledged message lost, and everything works
//! again shortly after Redis returns, without restarting the server.

use std::time::{Duration, Instant};

use crate::helpers::{Connected, TestClient, TestRedis, eventually, eventually_within, spawn_app};

/// How soon after Redis returns storage and cross-node delivery must work again.
const RECOVERY: Duration = Duration::from_secs(5);

async fn ready_status(url: &str) -> u16 {
    reqwest::get(format!("{url}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Sends from `from` to `to` until a message crosses to `to`'s node, which must happen within
/// [`RECOVERY`] of `back`; returns the ids of every acknowledged message. A message stored
/// before the adapter has resubscribed is not delivered live (it is in the history), hence
/// the retries.
async fn deliver_once_recovered(
    from: &Connected,
    to: &mut Connected,
    back: Instant,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut attempt = 0;
    let received = eventually_within(
        RECOVERY.saturating_sub(back.elapsed()),
        async || {
            attempt += 1;
            let ack = from.send_to(&to.user_id, &format!("after-{attempt}")).await;
            let id = ack["message"]["id"].as_str()?;
            acked.push(id.to_owned());
            // A live delivery takes milliseconds; past this, it was stored only: send again.
            let quick = Duration::from_millis(300);
            to.client.wait_for_within("private message", quick).await
        },
        "a message to cross nodes after the outage",
    )
    .await;
    // The first message the recipient gets since the outage began: nothing refused during it
    // was delivered.
    assert!(
        received["content"].as_str().unwrap().starts_with("after-"),
        "{received}"
    );
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_acknowledged_message_and_heals_without_a_restart() {
    let mut redis = TestRedis::start_durable().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut acked = Vec::new();
    let ack = alice.send_to(&bob.user_id, "before").await;
    acked.push(ack["message"]["id"].as_str().unwrap().to_owned());
    bob.client.expect("private message").await;

    redis.stop().await;
    let outage = Instant::now();

    eventually(
        async || ready_status(&node1.url()).await == 503,
        "readyz to say 503 while Redis is down",
    )
    .await;
    let ack = alice.send_to(&bob.user_id, "during").await;
    assert_eq!(
        ack["error"], "storage unavailable, message not sent",
        "{ack}"
    );
    // The scenario: Redis stays down for 10 s (a sleep of the scenario, not a wait for a state).
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    redis.restart().await;
    let back = Instant::now();

    // Storage and cross-node delivery work again within 5 s, both ways, on the same sockets.
    acked.extend(deliver_once_recovered(&alice, &mut bob, back).await);
    acked.extend(deliver_once_recovered(&bob, &mut alice, back).await);
    assert_eq!(ready_status(&node1.url()).await, 200);

    let stored = redis.history_ids(&bob.user_id).await;
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged {id} is not in Redis: {stored:?}"
        );
    }
}
