//! Plain HTTP: probes and CORS.

use crate::helpers::{TestRedis, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_ok_while_redis_is_up() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("{}{path}", app.url())).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
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
