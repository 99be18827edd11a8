//! Restarting one of two nodes while users keep sending: no acknowledged message is lost, and
//! the restarted node's users restore their sessions on the other node.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{TestClient, TestRedis, eventually, spawn_app_with, test_settings};

/// Sends numbered messages from `sender` to `to` until `count` were acknowledged or the
/// connection failed; returns the acknowledged ids.
async fn send_until_failure(sender: &TestClient, to: &str, count: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..count {
        match sender
            .try_send(json!({ "content": format!("n{i}"), "to": to }))
            .await
        {
            Some(ack) if ack.get("message").is_some() => {
                acked.push(ack["message"]["id"].as_str().unwrap().to_owned());
            }
            Some(ack) => panic!("refused during a restart: {ack}"),
            None => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_under_load_loses_no_acknowledged_message() {
    let redis = TestRedis::start().await;
    // As fast as the clients go: this test is about the restart, not the rate limit.
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    let node1 = spawn_app_with(settings.clone()).await;
    let node2 = spawn_app_with(settings).await;
    let mut senders = Vec::new();
    for i in 0..5 {
        senders.push(TestClient::join(&node1, &format!("sender{i}")).await);
    }
    let sink = TestClient::join(&node2, "sink").await;

    // Load on node 1 while it drains.
    let load = senders
        .iter()
        .map(|s| send_until_failure(&s.client, &sink.user_id, 400));
    let stop = async {
        eventually(
            async || redis.history(&sink.user_id).await.len() >= 20,
            "messages flowing before the restart",
        )
        .await;
        node1.stop().await;
    };
    let (acked, ()) = tokio::join!(futures_util::future::join_all(load), stop);

    // Every user restores its session on the surviving node and keeps chatting.
    let mut all_acked: HashSet<String> = acked.into_iter().flatten().collect();
    assert!(
        !all_acked.is_empty(),
        "some messages went through before the restart"
    );
    for sender in &senders {
        let back = TestClient::join_with(&node2, json!({ "sessionID": sender.session_id })).await;
        assert_eq!(back.user_id, sender.user_id);
        let ack = back.send_to(&sink.user_id, "after").await;
        all_acked.insert(ack["message"]["id"].as_str().unwrap().to_owned());
    }

    let stored: HashSet<String> = redis.history_ids(&sink.user_id).await.into_iter().collect();
    let lost: Vec<&String> = all_acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost", lost.len());
}
