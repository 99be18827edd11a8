//! `block user` / `unblock user` from a client: `{ userID }`.

use serde_json::Value;

use super::UserId;

/// Why a `block user` or `unblock user` was refused (the `{ error }` of its ack).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRefusal {
    #[error("invalid payload: expected an object {{ userID }}")]
    InvalidPayload,
    #[error("userID must be a userID")]
    InvalidUser,
    #[error("you cannot block yourself")]
    Yourself,
    #[error("too many blocked users (at most {0})")]
    TooMany(usize),
    #[error("rate limited, slow down")]
    RateLimited,
    #[error("storage unavailable, try again")]
    StorageUnavailable,
}

impl BlockRefusal {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidUser => "invalid_user",
            Self::Yourself => "yourself",
            Self::TooMany(_) => "too_many",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// The user a `block user` or `unblock user` names.
pub fn parse_target(payload: &Value, me: &UserId) -> Result<UserId, BlockRefusal> {
    let Some(fields) = payload.as_object() else {
        return Err(BlockRefusal::InvalidPayload);
    };
    let user = fields
        .get("userID")
        .and_then(Value::as_str)
        .and_then(UserId::parse)
        .ok_or(BlockRefusal::InvalidUser)?;
    if user == *me {
        return Err(BlockRefusal::Yourself);
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_block_names_another_user() {
        let me = UserId::parse("me").expect("an id");
        assert_eq!(
            parse_target(&json!({ "userID": "auth0|x" }), &me).map(|u| u.to_string()),
            Ok("auth0|x".to_owned())
        );
        assert_eq!(
            parse_target(&json!("x"), &me),
            Err(BlockRefusal::InvalidPayload)
        );
        for bad in [
            json!({}),
            json!({ "userID": 1 }),
            json!({ "userID": "a b" }),
        ] {
            assert_eq!(parse_target(&bad, &me), Err(BlockRefusal::InvalidUser));
        }
        assert_eq!(
            parse_target(&json!({ "userID": "me" }), &me),
            Err(BlockRefusal::Yourself)
        );
    }
}
