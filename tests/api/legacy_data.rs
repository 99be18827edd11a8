//! Data written by the Node.js server (16-hex IDs, messages without id or timestamp).

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{TestClient, TestRedis, spawn_app};

const SESSION: &str = "1f2e3d4c5b6a7980";
const USER: &str = "a1b2c3d4e5f60718";
const PEER: &str = "0918273645abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_history_written_by_the_node_server_are_restored_and_served() {
    let redis = TestRedis::start().await;
    redis.store_offline_session(SESSION, USER, "legacy").await;
    redis
        .store_offline_session("ffffffffffffffff", PEER, "old friend")
        .await;
    let mut conn = redis.conn().await;
    let old = [
        json!({ "content": "hi", "from": PEER, "to": USER }),
        json!({ "content": "hello back", "from": USER, "to": PEER }),
    ];
    for message in &old {
        let _: () = conn
            .rpush(format!("messages:{USER}"), message.to_string())
            .await
            .unwrap();
    }
    let app = spawn_app(&redis).await;

    let mut legacy = TestClient::join_with(&app, json!({ "sessionID": SESSION })).await;

    assert_eq!(legacy.session_id, SESSION);
    assert_eq!(legacy.user_id, USER);
    let friend = legacy.listed(PEER);
    assert_eq!(friend["messages"], json!(old));
    assert_eq!(friend["connected"], false);

    // A legacy user can message with the legacy ID too.
    let ack = legacy.send_to(PEER, "still here").await;
    assert_eq!(ack["message"]["from"], USER);
    // Forwarding is done before the acknowledgement: had the sending socket been sent its own
    // message, it would come before this later one.
    let newcomer = TestClient::join(&app, "newcomer").await;
    newcomer.send_to(USER, "welcome back").await;
    let first = legacy.client.expect("private message").await;
    assert_eq!(
        first["content"], "welcome back",
        "the sender got its own message"
    );
}
