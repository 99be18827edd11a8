//! Plain HTTP: health probes, CORS and the built web client.

use std::{path::Path, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::{ServeDir, ServeFile},
};

use crate::{
    metrics::Metrics,
    store::{self, RedisPool, redis::PubSubStatus},
};

/// `/healthz` (the process answers), `/readyz` (Redis answers, and this node receives
/// cross-node traffic), `/metrics` (Prometheus), then the client's files.
pub fn router(
    pool: RedisPool,
    pubsub: PubSubStatus,
    metrics: Metrics,
    client_dir: &Path,
) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state((pool, pubsub)))
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

async fn ready(
    State((pool, pubsub)): State<(RedisPool, PubSubStatus)>,
) -> (StatusCode, &'static str) {
    // A node that stores messages but cannot receive what other nodes publish would take
    // clients whose messages never arrive live.
    if !pubsub.is_up() {
        return (StatusCode::SERVICE_UNAVAILABLE, "pub/sub unavailable");
    }
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

/// The browser origins allowed to open a Socket.IO connection, besides this server's own.
#[derive(Clone)]
pub struct AllowedOrigins(Arc<Vec<String>>);

impl AllowedOrigins {
    pub fn new(origins: &[String]) -> Self {
        Self(Arc::new(
            origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
        ))
    }

    fn permits(&self, origin: &str, hosts: &[&str]) -> bool {
        let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        self.0.iter().any(|o| o == "*" || o == origin) || hosts.contains(&authority)
    }
}

/// Refuses a Socket.IO request whose browser `Origin` is neither this server's own nor listed.
/// CORS alone is not enough: a browser opens a cross-origin WebSocket without asking. Requests
/// without an `Origin` (non-browser clients) pass: for them the origin means nothing.
pub async fn check_origin(
    State(allowed): State<AllowedOrigins>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let hosts: Vec<&str> = [header::HOST.as_str(), "x-forwarded-host"]
            .into_iter()
            .filter_map(|name| headers.get(name)?.to_str().ok())
            .collect();
        if !allowed.permits(origin, &hosts) {
            tracing::debug!(origin, "refused a connection from a foreign origin");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    next.run(request).await
}
