//! A message on a Redis Cluster with one master down (issue #12, risk 4): the sender's and the
//! recipient's histories sit on different masters, and a message is never stored in one of
//! them only: refused (`{ error }`), it is in neither history once the cluster serves again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Connected, TestClient, TestCluster, eventually_within, spawn_app};

/// How long the cluster has to finish what it started (an undo of a refused message) after
/// it serves again.
const HEAL: Duration = Duration::from_secs(30);

fn contents(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_one_history_is_unreachable_is_in_both_or_neither() {
    let mut cluster = TestCluster::start(0).await;
    let node = spawn_app(&cluster.redis).await;
    let alice = TestClient::join(&node, "alice").await;
    let alices_master = cluster
        .owner(cluster.slot(&format!("messages:{}", alice.user_id)).await)
        .await;
    // A recipient whose history is on another master than Alice's.
    let mut bob: Option<(Connected, u16)> = None;
    for i in 0..20 {
        let candidate = TestClient::join(&node, &format!("bob{i}")).await;
        let key = format!("messages:{}", candidate.user_id);
        let master = cluster.owner(cluster.slot(&key).await).await;
        if master != alices_master {
            bob = Some((candidate, master));
            break;
        }
    }
    let (bob, bobs_master) = bob.expect("a user whose history is on another master");

    cluster.stop(bobs_master).await;
    let ack = alice
        .client
        .try_send(serde_json::json!({ "content": "split?", "to": bob.user_id }))
        .await;
    cluster.start_node(bobs_master).await;
    cluster.serving().await;

    // Refused within the node's bound on a history write (3 s), not after redis-rs's retries.
    let ack = ack.expect("an ack while Bob's master was down");
    assert_eq!(
        ack["error"], "storage unavailable, message not sent",
        "{ack}"
    );
    eventually_within(
        HEAL,
        async || {
            let at_alice = contents(&cluster.redis.history(&alice.user_id).await);
            let at_bob = contents(&cluster.redis.history(&bob.user_id).await);
            if at_alice.is_empty() && at_bob.is_empty() {
                Ok(())
            } else {
                Err(format!("alice has {at_alice:?}, bob has {at_bob:?}"))
            }
        },
        "the refused message in neither history",
    )
    .await;
    let after = alice.send_to(&bob.user_id, "after").await;
    assert!(after.get("message").is_some(), "{after}");
    // Nor in the conversation's index, which `fetch messages` reads.
    let page = json!({ "with": bob.user_id });
    eventually_within(
        HEAL,
        async || {
            let ack = alice.client.ask("fetch messages", page.clone()).await;
            let shown = contents(ack["messages"].as_array().map_or(&[][..], Vec::as_slice));
            if shown == ["after"] {
                Ok(())
            } else {
                Err(format!("a page shows {shown:?}"))
            }
        },
        "the refused message in no page",
    )
    .await;
}
