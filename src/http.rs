//! Plain HTTP: health probes, CORS and the built web client.

use std::{path::Path, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::{ServeDir, ServeFile},
};

use crate::{
    metrics::Metrics,
    store::{self, RedisPool},
};

/// `/healthz` (the process answers), `/readyz` (Redis answers too), `/metrics` (Prometheus),
/// then the client's files.
pub fn router(pool: RedisPool, metrics: Metrics, client_dir: &Path) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(pool))
        .route(
            "/metrics",
            get(async move || {
                let headers = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
                (headers, metrics.render())
            }),
        );
    if client_dir.join("index.html").is_file() {
        let index = ServeFile::new(client_dir.join("index.html"));
        router.fallback_service(ServeDir::new(client_dir).fallback(index))
    } else {
        tracing::info!(dir = %client_dir.display(), "no built client found; serving the API only");
        router
    }
}

async fn ready(State(pool): State<RedisPool>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(Duration::from_secs(1), store::ping(&pool)).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(err)) => {
            tracing::warn!(error = ?err, "not ready: Redis does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis timed out"),
    }
}

/// Lets the listed browser origins (the Vite dev server by default) call the Socket.IO
/// long-polling endpoint; `*` allows any.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any)
}
