//! A client that stops reading cannot make the server buffer without bound: its queue is capped
//! (the engine's per-socket buffer) and what does not fit is dropped for it (the messages stay in
//! its history), while everyone else is served.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{NodeProcess, TestClient, TestRedis, auth_for_mode, metric};

/// Connects over a raw WebSocket, reads up to the `session` event, and returns the stream
/// (which the test then never reads again) with the userID.
async fn stalled_reader(node: &NodeProcess) -> (impl Sized, String) {
    let url = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        node.port
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let (auth, _) = auth_for_mode(json!({ "username": "slow" }));
    ws.send(Message::text(format!("40{auth}")))
        .await
        .expect("connect packet");
    while let Some(Ok(frame)) = ws.next().await {
        let text = frame.into_text().unwrap_or_default();
        if let Some(event) = text.strip_prefix("42") {
            let event: Value = serde_json::from_str(event).expect("an event");
            if event[0] == "session" {
                return (ws, event[1]["userID"].as_str().unwrap().to_owned());
            }
        }
    }
    panic!("no session event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_grow_server_memory() {
    let redis = TestRedis::start().await;
    let env = [
        ("RATE_LIMIT_PER_SEC", "0"),
        ("MAX_MESSAGE_BYTES", "64000"),
        ("MAX_SOCKET_BUFFER", "16"),
    ];
    let node = NodeProcess::start(&redis, &env).await;
    let (_stalled, slow_user) = stalled_reader(&node).await;
    let auth = json!({ "username": "sender" });
    let sender = TestClient::join_with(&node, auth).await;
    let mut peer = TestClient::join(&node, "peer").await;
    let before = node.rss_kib().await;

    // 1,000 messages of 60 KB (60 MB, far more than the kernel's socket buffers absorb) for a
    // reader that takes none of them. The engine queues at most 16 packets (1 MB) for it.
    let content = "x".repeat(60_000);
    for _ in 0..1000 {
        let ack = sender.send_to(&slow_user, &content).await;
        assert!(ack.get("message").is_some(), "{ack}");
    }
    let grown = node.rss_kib().await.saturating_sub(before);
    eprintln!("server RSS grew by {grown} KiB");

    assert!(
        grown < 30 * 1024,
        "server memory grew by {grown} KiB for a stalled reader"
    );
    // What did not fit was dropped for that socket, and counted.
    let dropped = "privmsg_live_deliveries_dropped_total{reason=\"socket_buffer_full\"}";
    assert!(metric(&node, dropped).await > 0);
    // Others are still served.
    let ack = sender.send_to(&peer.user_id, "hi").await;
    assert!(ack.get("message").is_some());
    assert_eq!(peer.client.expect("private message").await["content"], "hi");
}
