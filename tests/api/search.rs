//! `search users`: prefix search on usernames, case-insensitive, ordered, bounded, never the
//! caller; bad queries refused with their reason; expired users never found.

use privmsg::{
    metrics::Metrics,
    settings::UsersScope,
    store::{RedisPool, UserIndex, users::maintenance},
};
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{
        Connected, TestApp, TestClient, TestRedis, eventually_within, metric, spawn_app_with,
        test_settings,
    },
    on_standalone_and_cluster,
};

async fn node(redis: &TestRedis, scope: UsersScope) -> TestApp {
    let mut settings = test_settings(redis);
    settings.users_scope = scope;
    spawn_app_with(settings).await
}

/// The usernames in a successful answer, in order.
fn names(answer: &Value) -> Vec<String> {
    answer["users"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list of users: {answer}"))
        .iter()
        .map(|user| user["username"].as_str().expect("a username").to_owned())
        .collect()
}

async fn search(who: &Connected, query: Value) -> Value {
    who.client.ask("search users", query).await
}

async fn finds(redis: TestRedis, scope: UsersScope) {
    let app = node(&redis, scope).await;
    let caller = TestClient::join(&app, "Alpha").await;
    let mut others = Vec::new();
    for name in ["alice", "ALBERT", "Alfred", "bob", "al"] {
        others.push(TestClient::join(&app, name).await);
    }

    let all = search(&caller, json!({ "query": "aL" })).await;
    let two = search(&caller, json!({ "query": "AL", "limit": 2 })).await;
    let none = search(&caller, json!({ "query": "alz" })).await;

    assert_eq!(names(&all), ["al", "ALBERT", "Alfred", "alice"]);
    assert_eq!(names(&two), ["al", "ALBERT"]);
    assert_eq!(none, json!({ "users": [] }));
    let albert = &others[1];
    assert_eq!(
        all["users"][1],
        json!({ "userID": albert.user_id, "username": "ALBERT", "connected": true, "unread": 0 })
    );
}

async fn search_finds_by_prefix_case_insensitively_in_order_within_the_limit_never_the_caller(
    redis: TestRedis,
) {
    finds(redis, UsersScope::All).await;
}

async fn search_works_the_same_in_the_contacts_scope(redis: TestRedis) {
    finds(redis, UsersScope::Contacts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_search_is_refused_with_its_reason_and_the_socket_stays_connected() {
    let redis = TestRedis::start().await;
    let app = node(&redis, UsersScope::All).await;
    let mut caller = TestClient::join(&app, "caller").await;
    let query = "query must be a string of 1 to 64 characters";
    let limit = "limit must be an integer from 1 to 50";

    for (payload, reason) in [
        (json!(null), query),
        (json!("ali"), query),
        (json!({}), query),
        (json!({ "query": "" }), query),
        (json!({ "query": 42 }), query),
        (json!({ "query": "x".repeat(65) }), query),
        (json!({ "query": "a", "limit": 0 }), limit),
        (json!({ "query": "a", "limit": 51 }), limit),
        (json!({ "query": "a", "limit": 1.5 }), limit),
        (json!({ "query": "a", "limit": "3" }), limit),
    ] {
        let answer = search(&caller, payload.clone()).await;
        assert_eq!(answer, json!({ "error": reason }), "{payload}");
    }

    assert_eq!(
        search(&caller, json!({ "query": "c" })).await,
        json!({ "users": [] })
    );
    assert!(!caller.client.was_dropped());
    let refused = metric(
        &app,
        "privmsg_user_searches_total{result=\"invalid_query\"}",
    )
    .await;
    assert_eq!(refused, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_share_the_sockets_rate_limit() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.001;
    settings.rate_limit_burst = 1.0;
    let app = spawn_app_with(settings).await;
    let caller = TestClient::join(&app, "caller").await;

    let first = search(&caller, json!({ "query": "a" })).await;
    let second = search(&caller, json!({ "query": "a" })).await;

    assert_eq!(first, json!({ "users": [] }));
    assert_eq!(second, json!({ "error": "rate limited" }));
}

async fn an_expired_user_is_never_found_and_is_pruned_from_the_index(redis: TestRedis) {
    let app = node(&redis, UsersScope::All).await;
    let caller = TestClient::join(&app, "caller").await;
    let gone = TestClient::join(&app, "zed").await;
    let kept = TestClient::join(&app, "zoe").await;
    let member = format!("zed\0{}", gone.user_id);
    let mut conn = redis.conn().await;
    // As when both expire: the session and the key that leads to it.
    let _: () = conn
        .del(format!("session:{}", gone.session_id))
        .await
        .expect("DEL");
    let _: () = conn
        .del(format!("privmsg:user:{}", gone.user_id))
        .await
        .expect("DEL");

    let found = search(&caller, json!({ "query": "z" })).await;

    assert_eq!(names(&found), ["zoe"]);
    assert_eq!(found["users"][0]["userID"], kept.user_id.as_str());
    let score: Option<f64> = conn
        .zscore("privmsg:usernames", &member)
        .await
        .expect("ZSCORE");
    assert_eq!(score, None, "the expired member is still indexed");
    assert_eq!(metric(&app, "privmsg_users_pruned_total").await, 1);
}

/// The index's upkeep, run directly: the backfill indexes sessions another server wrote, the
/// pass removes members whose user is gone; both can run again without harm.
async fn the_backfill_indexes_node_written_sessions_and_the_pass_prunes_expired_ones(
    redis: TestRedis,
) {
    redis
        .store_offline_session("00000000000000aa", "a1a1a1a1a1a1a1a1", "Legacy")
        .await;
    let mut conn = redis.conn().await;
    let _: () = conn
        .expire("session:00000000000000aa", 500)
        .await
        .expect("EXPIRE");
    let _: () = conn
        .zadd("privmsg:usernames", "ghost\0b2b2b2b2b2b2b2b2", 0)
        .await
        .expect("ZADD");
    let pool = RedisPool::new(&redis.target, 1, Metrics::new()).expect("pool");
    let metrics = Metrics::new();
    let index = UserIndex::new(
        pool,
        std::time::Duration::from_secs(600),
        metrics.users_pruned,
    );

    index.backfill().await.expect("backfill");
    let pruned = index.prune_expired().await.expect("pass");
    index.backfill().await.expect("backfill again");
    let pruned_again = index.prune_expired().await.expect("pass again");

    assert_eq!((pruned, pruned_again), (1, 0));

    let members: Vec<String> = conn
        .zrange("privmsg:usernames", 0, -1)
        .await
        .expect("ZRANGE");
    assert_eq!(members, ["legacy\0a1a1a1a1a1a1a1a1"]);
    let session: Option<String> = conn
        .get("privmsg:user:a1a1a1a1a1a1a1a1")
        .await
        .expect("GET");
    assert_eq!(session.as_deref(), Some("00000000000000aa"));
    let ttl: i64 = conn
        .ttl("privmsg:user:a1a1a1a1a1a1a1a1")
        .await
        .expect("TTL");
    assert!((490..=500).contains(&ttl), "{ttl}");
    let found = index.search("leg", 5, "someone").await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].username, "Legacy");
}

/// The upkeep walks every session: one node per interval runs it, whoever claims it first,
/// and the claimer may take it again (a retry after a failed walk); nobody else can until the
/// claim expires, a little before the claimer's next tick.
async fn one_node_per_interval_runs_the_index_upkeep(redis: TestRedis) {
    let pool = RedisPool::new(&redis.target, 1, Metrics::new()).expect("pool");
    let index = UserIndex::new(
        pool,
        std::time::Duration::from_secs(600),
        Metrics::new().users_pruned,
    );

    let first = index.claim_upkeep("node-a").await.expect("claim");
    let other = index.claim_upkeep("node-b").await.expect("claim");
    let again = index.claim_upkeep("node-a").await.expect("claim");

    assert_eq!((first, other, again), (true, false, true));
    let ttl: i64 = redis
        .conn()
        .await
        .ttl("privmsg:upkeep:index")
        .await
        .expect("TTL");
    let every = maintenance::UPKEEP_EVERY.as_secs() as i64;
    assert!((every - 120..every).contains(&ttl), "{ttl}");
}

on_standalone_and_cluster!(
    one_node_per_interval_runs_the_index_upkeep,
    search_finds_by_prefix_case_insensitively_in_order_within_the_limit_never_the_caller,
    search_works_the_same_in_the_contacts_scope,
    an_expired_user_is_never_found_and_is_pruned_from_the_index,
    the_backfill_indexes_node_written_sessions_and_the_pass_prunes_expired_ones,
);

/// A node leaves the index's upkeep (a walk of every session) alone for
/// INDEX_UPKEEP_DELAY_SECS after it starts, so that a restart's reconnect storm meets no walk,
/// and claims it once that has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_claims_the_index_upkeep_only_once_its_start_delay_has_passed() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.index_upkeep_delay_secs = 5;
    let node = spawn_app_with(settings).await;
    TestClient::join(&node, "alice").await;
    let mut conn = redis.conn().await;
    let claimed = async |conn: &mut privmsg::store::Conn| {
        conn.exists::<_, bool>("privmsg:upkeep:index")
            .await
            .expect("EXISTS")
    };

    assert!(
        !claimed(&mut conn).await,
        "claimed while the node was serving its first join"
    );
    eventually_within(
        Duration::from_secs(15),
        async || claimed(&mut conn).await,
        "the upkeep claimed once the delay has passed",
    )
    .await;
}
