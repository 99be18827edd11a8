//! Plain HTTP: health probes, metrics (on a listener of their own), CORS, the browser-origin
//! check and the built web client.

use std::{borrow::Cow, path::Path, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{OriginalUri, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::{ServeDir, ServeFile},
};

use crate::{
    client_addr::ClientAddr,
    metrics::Metrics,
    store::{self, RedisPool, redis::PubSubStatus, replicas::ReplicaStatus},
};

/// `/healthz` (the process answers), `/readyz` (Redis answers, and this node receives
/// cross-node traffic), then the client's files. Not `/metrics`: see [`metrics_router`].
pub fn router(
    pool: RedisPool,
    pubsub: PubSubStatus,
    replicas: ReplicaStatus,
    client_dir: &Path,
) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state((pool, pubsub, replicas)));
    if client_dir.join("index.html").is_file() {
        let index = ServeFile::new(client_dir.join("index.html"));
        router.fallback_service(ServeDir::new(client_dir).fallback(index))
    } else {
        tracing::info!(dir = %client_dir.display(), "no built client found; serving the API only");
        router
    }
}

/// `/metrics` (Prometheus), served on METRICS_ADDR only: the figures (connections, refusals,
/// Redis latency) help whoever plans an attack, so they stay off the port clients reach, and
/// a listener of its own needs no token for Prometheus to carry.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(async move || {
            let headers = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
            (headers, metrics.render())
        }),
    )
}

async fn ready(
    State((pool, pubsub, replicas)): State<(RedisPool, PubSubStatus, ReplicaStatus)>,
) -> (StatusCode, Cow<'static, str>) {
    // Through Sentinel, first: without a sentinel the node would not find the next master
    // (and, started so, finds none at all), whatever else is wrong.
    if pool.sentinels().is_some_and(|sentinels| !sentinels.is_up()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Cow::Borrowed("redis sentinels unreachable"),
        );
    }
    // A node that stores messages but cannot receive what other nodes publish would take
    // clients whose messages never arrive live.
    if !pubsub.is_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "pub/sub unavailable".into(),
        );
    }
    // REDIS_WAIT_REPLICAS: every message would be refused.
    if let Some(shortfall) = replicas.shortfall() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {shortfall}").into(),
        );
    }
    match tokio::time::timeout(Duration::from_secs(1), store::ping(&pool)).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".into()),
        Ok(Err(err)) => {
            tracing::warn!(error = ?err, "not ready: Redis does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable".into())
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis timed out".into()),
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

    /// Whether a browser on `origin` may connect to a server that calls itself one of `hosts`
    /// (authorities), over `scheme` when a trusted proxy said which (else any scheme).
    fn permits(&self, origin: &str, hosts: &[&str], scheme: Option<&str>) -> bool {
        if self.0.iter().any(|o| o == "*" || o == origin) {
            return true;
        }
        let (origin_scheme, authority) = origin.split_once("://").unwrap_or(("", origin));
        let same_scheme = scheme.is_none_or(|scheme| scheme.eq_ignore_ascii_case(origin_scheme));
        same_scheme && hosts.contains(&authority)
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
        // X-Forwarded-Host and -Proto say what the browser asked for, but only a trusted
        // proxy's word counts: from anyone else they are whatever the client wanted to claim.
        let forwarded = request
            .extensions()
            .get::<ClientAddr>()
            .is_some_and(|client| client.via_trusted_proxy);
        let first = |name: &str| {
            let value = headers.get(name)?.to_str().ok()?;
            value.split(',').next().map(str::trim)
        };
        let mut hosts: Vec<&str> = first(header::HOST.as_str()).into_iter().collect();
        let mut scheme = None;
        if forwarded {
            hosts.extend(first("x-forwarded-host"));
            scheme = first("x-forwarded-proto");
        }
        if !allowed.permits(origin, &hosts, scheme) {
            tracing::debug!(origin, "refused a connection from a foreign origin");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    next.run(request).await
}

/// Copies the request's URI and header values out of the connection's read buffer. hyper hands
/// them out as slices of that buffer (16 KiB), and engineioxide keeps each socket's request
/// head for the socket's whole life: a few hundred bytes of headers would otherwise hold the
/// whole buffer for as long as the connection stays open.
pub async fn detach_head(mut request: Request, next: Next) -> Response {
    detach(&mut request);
    next.run(request).await
}

/// Gives the URI (axum's copy of it too) and each header value an allocation of its own;
/// header names already have theirs.
fn detach<B>(request: &mut axum::http::Request<B>) {
    let mut headers = HeaderMap::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    *request.headers_mut() = headers;
    if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
        if let Some(OriginalUri(original)) = request.extensions_mut().get_mut::<OriginalUri>() {
            *original = uri.clone();
        }
        *request.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;

    #[test]
    fn a_detached_request_holds_nothing_of_the_connection_buffer() {
        let buffer = Bytes::from(b"/socket.io/?EIO=4&transport=websocketlocalhost:3000".to_vec());
        let uri = Uri::from_maybe_shared(buffer.slice(..37)).unwrap();
        let mut request = axum::http::Request::builder()
            .uri(uri.clone())
            .header(
                header::HOST,
                HeaderValue::from_maybe_shared(buffer.slice(37..)).unwrap(),
            )
            .header("x-custom", "a")
            .header("x-custom", "b")
            .extension(OriginalUri(uri))
            .body(())
            .unwrap();
        assert!(!buffer.is_unique());

        detach(&mut request);

        assert!(buffer.is_unique(), "something still points into the buffer");
        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(
            request.extensions().get::<OriginalUri>().unwrap().0,
            *request.uri()
        );
        assert_eq!(request.headers()[header::HOST], "localhost:3000");
        let custom: Vec<_> = request.headers().get_all("x-custom").iter().collect();
        assert_eq!(custom, ["a", "b"]);
    }
}
