//! Start-up loads every Lua script of `redis-scripts/`, on every master of a cluster, so that
//! no script's first call pays a NOSCRIPT round trip and a load.

use redis::Script;
use serde_json::json;

use crate::{
    helpers::{TestRedis, spawn_app},
    on_standalone_and_cluster,
};
use privmsg::store::RedisTarget;

/// Each file of `redis-scripts/` with the SHA1 that EVALSHA names it by.
fn every_script() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/redis-scripts");
    let mut scripts: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("redis-scripts/ is there")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let source = std::fs::read_to_string(&path).expect("a script");
            let name = path.file_name().expect("a file name").to_string_lossy();
            (
                name.into_owned(),
                Script::new(&source).get_hash().to_owned(),
            )
        })
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no script in {dir}");
    scripts
}

/// A plain connection to each node the test's Redis is made of (every one a master).
async fn each_node(redis: &TestRedis) -> Vec<redis::aio::MultiplexedConnection> {
    let urls = match &redis.target {
        RedisTarget::Standalone(url) => vec![url.clone()],
        RedisTarget::Cluster(nodes) => nodes.clone(),
        RedisTarget::Sentinel(_) => unreachable!("the suite's Redis is standalone or a cluster"),
    };
    let mut conns = Vec::new();
    for url in urls {
        let client = redis::Client::open(url).expect("a Redis URL");
        let conn = client.get_multiplexed_async_connection().await;
        conns.push(conn.expect("the node answers"));
    }
    conns
}

async fn a_node_loads_every_script_of_redis_scripts_on_every_master_at_start(redis: TestRedis) {
    let scripts = every_script();
    let mut nodes = each_node(&redis).await;
    for node in &mut nodes {
        // Fresh, even on a Redis the test was handed (TEST_REDIS_URL).
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(node)
            .await
            .expect("SCRIPT FLUSH");
    }

    let _app = spawn_app(&redis).await;

    for node in &mut nodes {
        let hashes: Vec<&str> = scripts.iter().map(|(_, hash)| hash.as_str()).collect();
        let loaded: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(&hashes)
            .query_async(node)
            .await
            .expect("SCRIPT EXISTS");
        let missing: Vec<&str> = scripts
            .iter()
            .zip(loaded)
            .filter(|(_, loaded)| !loaded)
            .map(|((name, _), _)| name.as_str())
            .collect();
        assert!(missing.is_empty(), "not loaded at start: {missing:?}");
    }
}

on_standalone_and_cluster!(a_node_loads_every_script_of_redis_scripts_on_every_master_at_start);

/// `take_back.lua`, which a Redis Cluster node runs to take a refused message back out of a
/// key whose append already trimmed it: the message leaves, what the trim dropped comes back,
/// and a second run (a retry, or the late pass after a timed-out write) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_a_message_back_twice_puts_back_what_its_trim_dropped_once() {
    let redis = TestRedis::start().await;
    let mut conn = redis.conn().await;
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-scripts/take_back.lua"
    ))
    .expect("the script");
    let take_back = async |conn: &mut privmsg::store::Conn, key: &str, args: &[&str]| {
        redis::cmd("EVAL")
            .arg(&source)
            .arg(1)
            .arg(key)
            .arg(args)
            .query_async::<i64>(conn)
            .await
            .expect("EVAL")
    };
    // A history of cap 3 after the refused message's append: "a" was trimmed.
    redis::cmd("RPUSH")
        .arg("messages:u")
        .arg(&["b", "c", "refused"])
        .query_async::<()>(&mut conn)
        .await
        .expect("RPUSH");

    let removed = [
        take_back(&mut conn, "messages:u", &["list", "refused", "a"]).await,
        take_back(&mut conn, "messages:u", &["list", "refused", "a"]).await,
    ];

    assert_eq!(removed, [1, 0]);
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg("messages:u")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("LRANGE");
    assert_eq!(history, ["a", "b", "c"]);
}

/// `webhook_message.lua`, which a webhook delivery reads its message with: blocked, as queued,
/// edited (found by id and sender from the tail, past the first chunk, not fooled by the id in
/// another message's content), or gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_finds_its_message_as_queued_edited_or_gone() {
    let redis = TestRedis::start().await;
    let mut conn = redis.conn().await;
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-scripts/webhook_message.lua"
    ))
    .expect("the script");
    let (history, blocks) = ("messages:b", "privmsg:blocks:{messages:b}");
    let find = async |conn: &mut privmsg::store::Conn, args: [&str; 4]| {
        redis::cmd("EVAL")
            .arg(&source)
            .arg(2)
            .arg(history)
            .arg(blocks)
            .arg(&args)
            .query_async::<redis::Value>(conn)
            .await
            .expect("EVAL")
    };
    let id = "0190f1a2-0000-7000-8000-000000000001";
    let queued = json!({ "content": "hi", "from": "a", "to": "b", "id": id }).to_string();
    let edited =
        json!({ "content": "hi!", "from": "a", "to": "b", "id": id, "editedAt": 5 }).to_string();
    let push = async |conn: &mut privmsg::store::Conn, entries: &[String]| {
        redis::cmd("RPUSH")
            .arg(history)
            .arg(entries)
            .query_async::<()>(conn)
            .await
            .expect("RPUSH");
    };

    assert_eq!(
        find(&mut conn, ["a", "1", &queued, id]).await,
        redis::Value::Int(0)
    );
    push(&mut conn, std::slice::from_ref(&queued)).await;
    assert_eq!(
        find(&mut conn, ["a", "1", &queued, id]).await,
        redis::Value::Int(1)
    );
    redis::cmd("SADD")
        .arg(blocks)
        .arg("a")
        .query_async::<()>(&mut conn)
        .await
        .expect("SADD");
    assert_eq!(
        find(&mut conn, ["a", "1", &queued, id]).await,
        redis::Value::Int(2)
    );
    assert_eq!(
        find(&mut conn, ["a", "0", &queued, id]).await,
        redis::Value::Int(1)
    );

    // Edited, then 300 messages after it, the newest quoting its id (another message).
    redis::cmd("DEL")
        .arg(history)
        .query_async::<()>(&mut conn)
        .await
        .expect("DEL");
    let mut entries = vec![edited.clone()];
    entries.extend((0..300).map(|n| {
        let content = if n == 299 {
            id.to_owned()
        } else {
            n.to_string()
        };
        json!({ "content": content, "from": "a", "to": "b", "id": format!("other-{n}") })
            .to_string()
    }));
    push(&mut conn, &entries).await;
    assert_eq!(
        find(&mut conn, ["a", "0", &queued, id]).await,
        redis::Value::BulkString(edited.clone().into_bytes())
    );
    // Not the sender's: not its message.
    assert_eq!(
        find(&mut conn, ["c", "0", &queued, id]).await,
        redis::Value::Int(0)
    );
    // Deleted: only the quote is left; a legacy message (no id) is found as queued or not.
    redis::cmd("LREM")
        .arg(history)
        .arg(1)
        .arg(&edited)
        .query_async::<()>(&mut conn)
        .await
        .expect("LREM");
    assert_eq!(
        find(&mut conn, ["a", "0", &queued, id]).await,
        redis::Value::Int(0)
    );
    assert_eq!(
        find(&mut conn, ["a", "0", &queued, ""]).await,
        redis::Value::Int(0)
    );
    assert_eq!(
        find(&mut conn, ["a", "0", &entries[5], ""]).await,
        redis::Value::Int(1)
    );
}
