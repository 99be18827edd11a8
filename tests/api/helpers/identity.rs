//! `TEST_AUTH=jwt`: the same tests in the token mode (docs/protocol.md, "Handshake").
//! Test nodes then run with `AUTH=jwt`, and a client's Part IV `auth` is turned into what a
//! token client sends: `{ username }` becomes a token for a new user of that name, and a
//! `{ sessionID }` this process was given gets the token of that session's user added. Any
//! other `auth` (a refusal test's, one naming a Node-written session) goes out unchanged and
//! is refused with `invalid token`: such tests do not apply in this mode.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

/// The key of test nodes in the token mode.
pub const TEST_JWT_SECRET: &str = "the test suite's secret, 32 bytes or more";

/// The token of each session this process was given, by sessionID.
static TOKENS: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

pub fn jwt_mode() -> bool {
    std::env::var("TEST_AUTH").is_ok_and(|mode| mode == "jwt")
}

/// A token naming `user` (a userID) as `name`, valid for an hour.
fn token_for(user: &str, name: &str) -> String {
    let claims = json!({ "sub": user, "name": name, "exp": get_current_timestamp() + 3600 });
    let key = EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()).expect("a key");
    encode(&Header::new(Algorithm::HS256), &claims, &key).expect("a token")
}

/// What a client sends for `auth` in the mode the suite runs in, and the token it carries.
pub fn auth_for_mode(auth: Value) -> (Value, Option<String>) {
    if !jwt_mode() || auth.get("token").is_some() {
        return (auth, None);
    }
    let known = auth
        .get("sessionID")
        .and_then(Value::as_str)
        .and_then(|id| TOKENS.lock().ok()?.get(id).cloned());
    let token = match (known, auth.get("username").and_then(Value::as_str)) {
        (Some(token), _) => token,
        (None, Some(name)) => token_for(&uuid::Uuid::new_v4().to_string(), name),
        (None, None) => return (auth, None),
    };
    let mut auth = auth;
    if let Some(fields) = auth.as_object_mut() {
        fields.remove("username");
        fields.insert("token".into(), Value::String(token.clone()));
    }
    (auth, Some(token))
}

/// Remembers the token a session was joined with, for the reloads that name it.
pub fn remember(session_id: &str, token: Option<String>) {
    if let (Some(token), Ok(mut tokens)) = (token, TOKENS.lock()) {
        tokens.insert(session_id.to_owned(), token);
    }
}
