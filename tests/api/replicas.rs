//! Redis replicas: the helpers that cut a replica off really keep writes from it, on a
//! standalone master and on a Redis Cluster; `REDIS_WAIT_REPLICAS` holds acks for them.

use redis::AsyncCommands;

use crate::helpers::{TestCluster, TestRedis, TestReplica, connected_replicas, eventually};

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
