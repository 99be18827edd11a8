//! Scale-out behind a real nginx configured by `deploy/nginx.conf.template`: sticky sessions
//! for long-polling, WebSocket upgrades, and a stopped node's users moving to a live node.

use rust_socketio::TransportType::{self, Polling, Websocket};
use serde_json::{Value, json};

use crate::helpers::{Connected, TestApp, TestNginx, TestRedis, spawn_app};

/// `from` sends `content` to `to`; checks the acknowledgement and the delivery, and returns
/// the stored message.
async fn exchange(from: &Connected, to: &mut Connected, content: &str) -> Value {
    let ack = from.send_to(&to.user_id, content).await;
    let message = ack["message"].clone();
    assert_eq!(message["content"], content, "{ack}");
    assert_eq!(message["from"], from.user_id.as_str(), "{ack}");
    assert_eq!(message["to"], to.user_id.as_str(), "{ack}");
    assert_eq!(to.client.expect("private message").await, message);
    message
}

/// Reconnects `user` through nginx with its sessionID, as the demo client does after a
/// reload, and checks it got its own session back.
async fn come_back(nginx: &TestNginx, user: Connected, transport: TransportType) -> Connected {
    let (session_id, user_id) = (user.session_id.clone(), user.user_id.clone());
    user.client.disconnect().await;
    let back = nginx
        .join(json!({ "sessionID": session_id }), transport)
        .await;
    assert_eq!(back.session_id, session_id);
    assert_eq!(back.user_id, user_id);
    back
}

async fn two_nodes_behind_nginx(redis: &TestRedis) -> (TestApp, TestApp, TestNginx) {
    let (node1, node2) = (spawn_app(redis).await, spawn_app(redis).await);
    let nginx = TestNginx::start(&[&node1, &node2]).await;
    (node1, node2, nginx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_and_websocket_clients_chat_and_keep_their_sessions_through_nginx() {
    let redis = TestRedis::start().await;
    let (_node1, _node2, nginx) = two_nodes_behind_nginx(&redis).await;
    let mut alice = nginx.join(json!({ "username": "alice" }), Polling).await;
    let mut bob = nginx.join(json!({ "username": "bob" }), Websocket).await;

    let hello = exchange(&alice, &mut bob, "hello over long-polling").await;
    let reply = exchange(&bob, &mut alice, "hello over websocket").await;

    let mut alice = come_back(&nginx, alice, Polling).await;
    let mut bob = come_back(&nginx, bob, Websocket).await;
    let both = json!([hello, reply]);
    assert_eq!(alice.listed(&bob.user_id)["messages"], both);
    assert_eq!(bob.listed(&alice.user_id)["messages"], both);
    exchange(&alice, &mut bob, "still here").await;
    exchange(&bob, &mut alice, "me too").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_serving_node_stops_its_users_resume_on_the_other_node() {
    let redis = TestRedis::start().await;
    let (node1, node2, nginx) = two_nodes_behind_nginx(&redis).await;
    let alice = nginx.join(json!({ "username": "alice" }), Polling).await;
    let mut bob = nginx.join(json!({ "username": "bob" }), Websocket).await;
    let before = exchange(&alice, &mut bob, "before the restart").await;

    // Every client here comes from 127.0.0.1, so one node serves them all: stop that one.
    let serving = nginx.serving_node().await;
    let (stopped, live) = match serving {
        port if port == node1.port => (node1, node2),
        port if port == node2.port => (node2, node1),
        port => panic!("nginx served from {port}, not a test node"),
    };
    stopped.stop().await;

    let mut alice = come_back(&nginx, alice, Polling).await;
    let mut bob = come_back(&nginx, bob, Websocket).await;
    assert_eq!(nginx.serving_node().await, live.port);
    assert_eq!(alice.listed(&bob.user_id)["messages"], json!([before]));
    assert_eq!(bob.listed(&alice.user_id)["messages"], json!([before]));
    // The stopped node marked both offline as it drained; alice came back first.
    assert_eq!(bob.listed(&alice.user_id)["connected"], true);
    let after = exchange(&alice, &mut bob, "after the restart").await;
    exchange(&bob, &mut alice, "on the live node").await;
    assert_ne!(after["id"], before["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_idle_node_leaves_connected_clients_undisturbed() {
    let redis = TestRedis::start().await;
    let (node1, node2, nginx) = two_nodes_behind_nginx(&redis).await;
    let mut alice = nginx.join(json!({ "username": "alice" }), Polling).await;
    let mut bob = nginx.join(json!({ "username": "bob" }), Websocket).await;

    let serving = nginx.serving_node().await;
    let idle = if serving == node1.port { node2 } else { node1 };
    idle.stop().await;

    exchange(&alice, &mut bob, "nobody moved").await;
    exchange(&bob, &mut alice, "indeed").await;
    // The idle node finished stopping before these exchanges: had it announced anyone's
    // departure, that would come before bob's.
    bob.client.disconnect().await;
    let first = alice.client.expect("user disconnected").await;
    assert_eq!(first, json!(bob.user_id), "someone was announced offline");
}
