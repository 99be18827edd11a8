//! Plain HTTP: probes, CORS and where `/metrics` is served.

use serde_json::json;

use crate::helpers::{NodeProcess, Scraped, TestClient, TestRedis, eventually, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_ok_while_redis_is_up() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("{}{path}", app.url())).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_dev_origin_only() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let client = reqwest::Client::new();
    let polling = format!("{}/socket.io/?EIO=4&transport=polling", app.url());

    let allowed = client
        .get(&polling)
        .header("Origin", "http://localhost:8080")
        .send()
        .await
        .unwrap();
    let foreign = client
        .get(&polling)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();

    let header = |r: &reqwest::Response| r.headers().get("access-control-allow-origin").cloned();
    assert_eq!(header(&allowed).unwrap(), "http://localhost:8080");
    assert!(header(&foreign).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sockets_users_and_messages_by_outcome() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let _alice_tab2 = TestClient::join_with(&app, json!({ "sessionID": alice.session_id })).await;
    let bob = TestClient::join(&app, "bob").await;

    alice.send_to(&bob.user_id, "hi").await;
    alice.send_to(&bob.user_id, &"x".repeat(5000)).await;
    alice.send_to("no body", "hi").await;

    let text = reqwest::get(app.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "privmsg_sockets_connected 3",
        "privmsg_users_online 2",
        "privmsg_messages_accepted_total 1",
        "privmsg_messages_delivered_total 1",
        "privmsg_messages_refused_total{reason=\"too_long\"} 1",
        "privmsg_messages_refused_total{reason=\"invalid_recipient\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        text.contains("privmsg_redis_command_seconds_count{command=\"EVALSHA\"}"),
        "{text}"
    );
    // docs/configuration.md is rendered from the metrics the reference knows of
    // (src/settings/reference.rs); a family a node serves that it lacks was registered where
    // the reference does not look.
    let reference = include_str!("../../docs/configuration.md");
    let families = text
        .lines()
        .filter_map(|line| line.strip_prefix("# HELP "))
        .filter_map(|line| line.split_whitespace().next());
    for family in families {
        assert!(
            reference.contains(&format!("| `{family}` |")),
            "docs/configuration.md lacks {family}: add its registration to every_metric()"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_host_given_only_their_ports_serve_metrics_6091_ports_above() {
    let redis = TestRedis::start().await;

    let one = NodeProcess::start_with_default_metrics(&redis, &[]).await;
    let two = NodeProcess::start_with_default_metrics(&redis, &[]).await;

    for node in [&one, &two] {
        assert_eq!(u32::from(node.metrics_port), u32::from(node.port) + 6091);
        eventually(
            async || {
                let response = reqwest::get(node.metrics_url()).await.ok()?;
                let text = response.text().await.ok()?;
                text.contains("privmsg_sockets_connected").then_some(())
            },
            &format!("/metrics on port {}", node.metrics_port),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_refuses_foreign_browser_origins_on_both_transports() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let client = reqwest::Client::new();
    let polling = format!("{}/socket.io/?EIO=4&transport=polling", app.url());
    let websocket = format!("{}/socket.io/?EIO=4&transport=websocket", app.url());
    let status = |url: &str, origin: Option<String>| {
        let mut request = client.get(url);
        if url.contains("websocket") {
            request = request
                .header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        }
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let own = Some(app.url());
    let dev = Some("http://localhost:8080".to_owned());
    let foreign = Some("http://evil.example".to_owned());

    assert_eq!(status(&polling, foreign.clone()).await, 403);
    assert_eq!(status(&websocket, foreign).await, 403);
    assert_eq!(status(&polling, own.clone()).await, 200);
    assert_eq!(status(&websocket, own).await, 101);
    assert_eq!(status(&polling, dev).await, 200);
    assert_eq!(status(&polling, None).await, 200);
}
