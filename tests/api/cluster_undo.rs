//! On a Redis Cluster a refused message is removed again from the histories it reached
//! (`store/undo.rs`), retried while the cluster refuses the removal. A node stopped
//! meanwhile (a deploy during an outage) waits for those removals before it exits, rather than
//! leaving stored for good a message it answered `{ error }` (neither stored nor delivered).

use std::time::Duration;

use crate::helpers::{
    Connected, NodeProcess, TestClient, TestCluster, conversation_key, eventually,
    eventually_within,
};

/// Long enough for a drain, then the wait for removals (each bounded by 10 s), on a busy
/// machine.
const STOPPING: Duration = Duration::from_secs(40);

/// What the node logs when it starts waiting for the removals (`Undos::finish`).
const WAITING: &str = "waiting for messages still being stored or removed";

/// Alice's message to Bob reaches her history, then Bob's master takes no write (paused) and
/// the message is refused; her master takes no write either, so its removal cannot run. The
/// node is stopped (SIGTERM) meanwhile; once it waits for the removal the masters take writes
/// again. When the node has exited, the message is in no history and not indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_a_refused_message_cannot_be_removed_yet_removes_it_before_exiting() {
    let cluster = TestCluster::start(0).await;
    let redis = &cluster.redis;
    let mut node = NodeProcess::start(redis, &[]).await;
    let (alice, bob) = users_on_masters_the_node_can_stop_without(&cluster, &node).await;
    let master = async |user: &Connected| {
        let key = format!("messages:{}", user.user_id);
        cluster.owner(cluster.slot(&key).await).await
    };
    let (alices_master, bobs_master) = (master(&alice).await, master(&bob).await);
    let bobs_paused = cluster.pause_writes(bobs_master).await;

    let refused = alice.send_to(&bob.user_id, "refused");
    tokio::pin!(refused);
    let arranged = async {
        eventually(
            async || !redis.history(&alice.user_id).await.is_empty(),
            "the message in Alice's history",
        )
        .await;
        cluster.pause_writes(alices_master).await
    };
    let alices_paused = tokio::select! {
        biased;
        paused = arranged => paused,
        ack = &mut refused => panic!("refused before Alice's master was paused: {ack}"),
    };
    let ack = refused.await;
    assert_eq!(
        ack["error"], "storage unavailable, message not sent",
        "{ack}"
    );
    node.sigterm().await;
    eventually_within(
        STOPPING,
        async || node.exited() || node.logged(WAITING),
        "the node to exit, or to wait for its removals",
    )
    .await;
    alices_paused.lift().await;
    bobs_paused.lift().await;
    eventually_within(STOPPING, async || node.exited(), "the node to exit").await;

    assert!(
        redis.history(&alice.user_id).await.is_empty(),
        "the refused message stayed in Alice's history"
    );
    assert!(
        redis.history(&bob.user_id).await.is_empty(),
        "the refused message is in Bob's history"
    );
    let mut conn = redis.conn().await;
    let indexed: u64 = redis::cmd("ZCARD")
        .arg(conversation_key(&alice.user_id, &bob.user_id))
        .query_async(&mut conn)
        .await
        .expect("ZCARD");
    assert_eq!(
        indexed, 0,
        "the refused message is in its conversation's index"
    );
}

/// Alice and Bob, whose histories sit on two masters other than the one of the node's
/// liveness key: with both paused, the node can still stop (dropping its liveness waits for
/// its master, with no bound).
async fn users_on_masters_the_node_can_stop_without(
    cluster: &TestCluster,
    node: &NodeProcess,
) -> (Connected, Connected) {
    let mut conn = cluster.redis.conn().await;
    let node_id = eventually(
        async || {
            let nodes: Vec<String> = redis::cmd("SMEMBERS")
                .arg("privmsg:nodes")
                .query_async(&mut conn)
                .await
                .ok()?;
            nodes.into_iter().next()
        },
        "the node listed",
    )
    .await;
    let owner = async |key: String| cluster.owner(cluster.slot(&key).await).await;
    let nodes_master = owner(format!("privmsg:node:{node_id}")).await;
    let mut avoid = vec![nodes_master];
    let mut alice = None;
    for i in 0..200 {
        let user = TestClient::join(node, &format!("user{i}")).await;
        let master = owner(format!("messages:{}", user.user_id)).await;
        if avoid.contains(&master) {
            continue;
        }
        match alice.take() {
            None => {
                avoid.push(master);
                alice = Some(user);
            }
            Some(alice) => return (alice, user),
        }
    }
    panic!("no two users on masters other than the node's");
}
