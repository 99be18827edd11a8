//! What the server API answers when it refuses: a status and `{ "error": reason }`, the reason
//! short and safe (never a key, never a Redis error's text: those go to the log). And the JSON
//! body extractor every endpoint reads through, which turns each way a body can be wrong into
//! its reason.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::domain::Refusal;

/// Why a request was refused, with the status it answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    /// A body or a path that is not what the endpoint takes; the text says what.
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown user")]
    UnknownUser,
    #[error("no such endpoint")]
    NoSuchEndpoint,
    #[error("body too large")]
    TooLarge,
    /// The store or the server could not do it now; the cause is logged where it happened.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownUser | Self::NoSuchEndpoint => StatusCode::NOT_FOUND,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A store error: logged whole here, answered with a short reason.
    pub fn storage(err: &dyn std::fmt::Debug) -> Self {
        tracing::error!(error = ?err, "server API: storage unavailable");
        Self::Unavailable("storage unavailable".into())
    }
}

/// A refused message answers with the socket event's own text: a bad message is the caller's
/// (400), a full node or an unreachable store is the server's (503).
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Busy | Refusal::StorageUnavailable | Refusal::RateLimited => {
                Self::Unavailable(refusal.to_string())
            }
            _ => Self::BadRequest(refusal.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A request body parsed as JSON. Past the router's body limit it is 413; not JSON, 400 with
/// the parser's reason (its line and column, never the body itself).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest("cannot read the body".into())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|err| ApiError::BadRequest(format!("body is not JSON: {err}")))
    }
}
