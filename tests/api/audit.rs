//! The presence audit's walk (`SessionStore::socket_fields`): every session holding presence
//! fields, across many SCAN pages (and every master of a cluster), and no other session.

use std::time::Duration;

use privmsg::{
    metrics::Metrics,
    store::{PresenceField, RedisPool, SessionStore},
};

use crate::{helpers::TestRedis, on_standalone_and_cluster};

/// Pages of the walk, as small as the audit's.
const PAGE: usize = 500;

/// Many SCAN pages of sessions without fields, and two sessions with fields.
const OFFLINE: usize = 12_000;

fn hset(key: &str, fields: &[(&str, &str)]) -> redis::Cmd {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key);
    for (field, value) in fields {
        cmd.arg(field).arg(value);
    }
    cmd
}

async fn the_walk_finds_every_session_with_presence_fields_and_only_those(redis: TestRedis) {
    let conn = redis.conn().await;
    let mut writes: Vec<redis::Cmd> = (0..OFFLINE)
        .map(|i| {
            let user = format!("{i:016x}");
            hset(
                &format!("session:stored-{i}"),
                &[("userID", &user), ("connected", "false")],
            )
        })
        .collect();
    writes.push(hset(
        "session:online-1",
        &[("userID", "u1"), ("socket:node-a:s1", "1")],
    ));
    writes.push(hset(
        "session:online-2",
        &[
            ("userID", "u2"),
            ("socket:node-a:s2", "1"),
            ("socket:node-b:s3", "1"),
        ],
    ));
    conn.each::<redis::Value>(writes).await.expect("HSET");
    let pool = RedisPool::new(&redis.target, 1, Metrics::new()).expect("pool");
    let sessions = SessionStore::new(pool, Duration::from_secs(600));

    let mut found = sessions
        .socket_fields(PAGE, Duration::from_millis(1))
        .await
        .expect("walk");

    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, fields) in &mut found {
        fields.sort_by(|a, b| a.socket.cmp(&b.socket));
    }
    let field = |node: &str, socket: &str| PresenceField {
        node: node.to_owned(),
        socket: socket.to_owned(),
    };
    assert_eq!(
        found,
        [
            ("online-1".to_owned(), vec![field("node-a", "s1")]),
            (
                "online-2".to_owned(),
                vec![field("node-a", "s2"), field("node-b", "s3")]
            ),
        ]
    );
}

on_standalone_and_cluster!(the_walk_finds_every_session_with_presence_fields_and_only_those);
