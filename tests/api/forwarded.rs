//! `X-Forwarded-*` are believed from trusted proxies only (TRUSTED_PROXIES), through the
//! deployment's own nginx; `/metrics` is not on the port clients reach.

use serde_json::json;

use crate::{
    abuse::{join_from, refusal},
    helpers::{Scraped, TestApp, TestNginx, TestRedis, spawn_app, spawn_app_with, test_settings},
};

/// A node that trusts 127.0.0.1 (where the test's nginx runs), allowing one new session per
/// address.
async fn node_behind_a_trusted_proxy(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    let nginx = "127.0.0.1/32".parse().expect("a CIDR block");
    settings.trusted_proxies = privmsg::client_addr::TrustedProxies::new(&[nginx]);
    settings.new_sessions_per_minute = 1;
    settings.new_sessions_burst = 1;
    spawn_app_with(settings).await
}

/// The status of a long-polling handshake sent to `url` with `headers`.
async fn polling_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request =
        reqwest::Client::new().get(format!("{url}/socket.io/?EIO=4&transport=polling"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("an answer").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_nginx_each_forwarded_client_has_its_own_quota() {
    let redis = TestRedis::start().await;
    let node = node_behind_a_trusted_proxy(&redis).await;
    let nginx = TestNginx::start(&[&node]).await;

    // nginx appends its peer to what the client sent: the node takes the right-most entry
    // that is not a trusted proxy, here the address the client claimed.
    join_from(&nginx, "alice", "203.0.113.1").await;
    let bob = join_from(&nginx, "bob", "203.0.113.2").await;
    let headers = [("X-Forwarded-For", "203.0.113.1")];
    let refused = refusal(&nginx, json!({ "username": "mallory" }), &headers).await;

    assert!(refused.contains("too many new sessions"), "{refused}");
    let back = crate::helpers::TestClient::join_url(
        nginx.url(),
        json!({ "sessionID": bob.session_id }),
        rust_socketio::TransportType::Websocket,
    )
    .await;
    assert_eq!(back.user_id, bob.user_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_host_passes_the_origin_check_only_from_a_trusted_proxy() {
    let redis = TestRedis::start().await;
    let direct = spawn_app(&redis).await;
    let proxied = node_behind_a_trusted_proxy(&redis).await;
    let forged = [
        ("Origin", "http://evil.example"),
        ("X-Forwarded-Host", "evil.example"),
    ];
    let wrong_scheme = [
        ("Origin", "http://evil.example"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
    ];

    assert_eq!(polling_status(&direct.url(), &forged).await, 403);
    assert_eq!(polling_status(&proxied.url(), &forged).await, 200);
    assert_eq!(polling_status(&proxied.url(), &wrong_scheme).await, 403);
    let own = [("Origin", direct.url())];
    let own: Vec<(&str, &str)> = own.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(polling_status(&direct.url(), &own).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_replaces_a_forwarded_host_forged_by_its_client() {
    let redis = TestRedis::start().await;
    let node = node_behind_a_trusted_proxy(&redis).await;
    let nginx = TestNginx::start(&[&node]).await;
    let forged = [
        ("Origin", "http://evil.example"),
        ("X-Forwarded-Host", "evil.example"),
    ];
    let own_origin = nginx.url();

    assert_eq!(polling_status(&nginx.url(), &forged).await, 403);
    assert_eq!(
        polling_status(&nginx.url(), &[("Origin", own_origin.as_str())]).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_and_not_on_the_client_port() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let public = reqwest::get(format!("{}/metrics", app.url()))
        .await
        .expect("an answer");
    let own = reqwest::get(app.metrics_url()).await.expect("an answer");

    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap_or_default().contains("privmsg_"));
    assert_eq!(own.status(), 200);
    let text = own.text().await.expect("metrics text");
    assert!(text.contains("privmsg_sockets_connected 0"), "{text}");
}
