//! In front of every endpoint: the bearer key, then the count of the request by endpoint and
//! status (`privmsg_api_requests_total`), refusals included.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::IntCounterVec;

use super::{keys::ApiKeys, reply::ApiError};

/// What the guard needs: the keys and the counter.
#[derive(Clone)]
pub struct Guard {
    pub keys: Arc<ApiKeys>,
    pub requests: IntCounterVec,
}

/// Refuses a request without one of the keys (401), runs the others, and counts each.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let endpoint = endpoint(request.method(), request.uri().path());
    let response = if authorized(&guard.keys, &request) {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    };
    guard
        .requests
        .with_label_values(&[endpoint, response.status().as_str()])
        .inc();
    response
}

/// `Authorization: Bearer <key>` naming one of the keys (the scheme's case is free, as RFC
/// 9110 has it).
fn authorized(keys: &ApiKeys, request: &Request) -> bool {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() <= scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    keys.accepts(&value[scheme.len()..])
}

/// The endpoint a request is for, as a fixed label (never the userID in the path: labels must
/// stay few). `path` is what follows `/api`.
fn endpoint(method: &Method, path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["messages"]) => "POST /api/messages",
        ("GET", ["users", _]) => "GET /api/users/{userID}",
        ("DELETE", ["users", _]) => "DELETE /api/users/{userID}",
        ("GET", ["users", _, "export"]) => "GET /api/users/{userID}/export",
        ("POST", ["users", _, "emit"]) => "POST /api/users/{userID}/emit",
        ("POST", ["users", _, "disconnect"]) => "POST /api/users/{userID}/disconnect",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_userid_never_becomes_a_label() {
        assert_eq!(
            endpoint(&Method::GET, "/users/auth0%7Cabc"),
            "GET /api/users/{userID}"
        );
        assert_eq!(
            endpoint(&Method::GET, "/users/x/export"),
            "GET /api/users/{userID}/export"
        );
        assert_eq!(endpoint(&Method::PUT, "/users/x"), "other");
        assert_eq!(endpoint(&Method::GET, "/anything/else/at/all"), "other");
    }
}
