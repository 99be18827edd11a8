//! A Redis outage: no panic, no silent drop, no acknowledged message lost, and everything works
//! again shortly after Redis returns, without restarting the server.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::helpers::{TestClient, TestRedis, spawn_app};

async fn ready_status(url: &str) -> u16 {
    reqwest::get(format!("{url}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_redis_outage_loses_no_acknowledged_message_and_heals_without_a_restart() {
    let mut redis = TestRedis::start_durable().await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let mut alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;
    let mut acked: Vec<Value> = Vec::new();
    let ack = alice
        .client
        .send(json!({ "content": "before", "to": bob.user_id }))
        .await;
    acked.push(ack["message"]["id"].clone());
    bob.client.expect("private message").await;

    redis.stop();
    let outage = Instant::now();

    assert_eq!(ready_status(&node1.url()).await, 503);
    let ack = alice
        .client
        .send(json!({ "content": "during", "to": bob.user_id }))
        .await;
    assert_eq!(
        ack["error"], "storage unavailable, message not sent",
        "{ack}"
    );
    bob.client.expect_none("private message").await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    redis.restart().await;
    let back = Instant::now();

    // Storage and cross-node delivery both work again within 5 s, on the same sockets.
    let recovered = loop {
        let ack = alice
            .client
            .send(json!({ "content": "after", "to": bob.user_id }))
            .await;
        if ack.get("message").is_some() {
            break ack;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still failing: {ack}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    acked.push(recovered["message"]["id"].clone());
    let delivered = loop {
        let received = bob.client.expect("private message").await;
        if received["content"] == "after" {
            break received;
        }
    };
    assert_eq!(delivered["id"], recovered["message"]["id"]);
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    let reply = bob
        .client
        .send(json!({ "content": "reply", "to": alice.user_id }))
        .await;
    acked.push(reply["message"]["id"].clone());
    assert_eq!(
        alice.client.expect("private message").await["content"],
        "reply"
    );
    assert_eq!(ready_status(&node1.url()).await, 200);

    let stored: Vec<String> = redis
        .conn()
        .await
        .lrange(format!("messages:{}", bob.user_id), 0, -1)
        .await
        .unwrap();
    let stored: Vec<Value> = stored
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap()["id"].clone())
        .collect();
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged {id} is not in Redis: {stored:?}"
        );
    }
}
