//! What an idle connection keeps once it has its `users`: a WebSocket keeps a write buffer as
//! large as the largest frame it ever sent, for its whole life (tungstenite's `out_buffer`, see
//! BENCHMARKS.md, "Memory" in the current comparison), and `users` is that frame. In the `contacts`
//! scope `users` is the user and its contacts, so a connection holds the same memory whether
//! the deployment stores a handful of users or thousands; in the `all` scope it grows with them.

use redis::AsyncCommands;

use crate::helpers::{Connected, NodeProcess, TestClient, TestRedis, eventually};

/// Connections measured per node: enough that a per-connection difference of tens of KiB
/// stands out of the allocator's noise (a megabyte or two, on a loaded machine).
const CONNECTIONS: u64 = 100;

/// Stored users of the "large" deployment: their `users` entries make a ~450 KB frame in the
/// `all` scope.
const LARGE: usize = 5_000;

/// What a connection may hold more with [`LARGE`] stored users than with none, in KiB: far
/// below the ~450 KiB frame the `all` scope sends, above the noise seen (up to ~15 KiB).
const BOUND_KIB: u64 = 32;

/// Writes `count` offline sessions, as a long-running deployment has, pipelined.
async fn store_sessions(redis: &TestRedis, count: usize) {
    let mut conn = redis.conn().await;
    for chunk in (0..count).collect::<Vec<_>>().chunks(1_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let fields = [
                ("userID", format!("{i:016x}")),
                ("username", format!("stored-{i}")),
                ("connected", "false".to_owned()),
            ];
            pipe.hset_multiple(format!("session:stored-{i}"), &fields)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .expect("store sessions");
    }
}

/// The node's RSS growth per connection, in KiB, for `connections` users joining a
/// deployment that stores `stored` other users, in `scope`.
async fn growth_per_connection(stored: usize, scope: &str, connections: u64) -> u64 {
    let redis = TestRedis::start().await;
    store_sessions(&redis, stored).await;
    let node = NodeProcess::start(
        &redis,
        &[("USERS_SCOPE", scope), ("INDEX_UPKEEP_DELAY_SECS", "0")],
    )
    .await;
    // Measured once the node's start-up work is done: the username index backfilled (every
    // scope), the directory loaded (the `all` scope: the first join waits for it).
    let mut conn = redis.conn().await;
    eventually(
        async || conn.zcard::<_, usize>("privmsg:usernames").await.ok() >= Some(stored),
        "the username index to be backfilled",
    )
    .await;
    // A first round takes up what the start-up work freed (the allocator hands that out again
    // before it grows), so that the second round's growth is what its connections hold.
    let _warm_up = join_many(&node, "warm-up", connections).await;
    let before = node.rss_kib().await;
    let _measured = join_many(&node, "measured", connections).await;
    let per_connection = node.rss_kib().await.saturating_sub(before) / connections;
    eprintln!("{scope} scope, {stored} stored users: {per_connection} KiB per connection");
    per_connection
}

/// `count` new users, joined one after the other, each holding its `users`.
async fn join_many(node: &NodeProcess, prefix: &str, count: u64) -> Vec<Connected> {
    let mut users = Vec::new();
    for i in 0..count {
        users.push(TestClient::join(node, &format!("{prefix}-{i}")).await);
    }
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_contacts_scope_an_idle_connection_holds_as_much_with_thousands_of_stored_users() {
    let small = growth_per_connection(0, "contacts", CONNECTIONS).await;
    let large = growth_per_connection(LARGE, "contacts", CONNECTIONS).await;
    assert!(
        large <= small + BOUND_KIB,
        "{large} KiB per connection with {LARGE} stored users, {small} KiB with none"
    );
}

/// The measurement above can see the difference it rules out: the `all` scope, whose `users`
/// lists every stored user, does grow (until tungstenite releases its write buffer). Fewer
/// connections: each `users` here is a ~450 KB frame to parse, and the difference is large.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_all_scope_an_idle_connection_keeps_its_users_frame() {
    let small = growth_per_connection(0, "all", CONNECTIONS / 4).await;
    let large = growth_per_connection(LARGE, "all", CONNECTIONS / 4).await;
    assert!(
        large >= small + 4 * BOUND_KIB,
        "{large} KiB per connection with {LARGE} stored users, {small} KiB with none"
    );
}
