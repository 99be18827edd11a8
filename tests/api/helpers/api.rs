//! The server API as a backend calls it: real HTTP (reqwest) with a bearer key, and a node
//! started with API_KEY.

use privmsg::settings::Settings;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{TestApp, TestRedis, spawn_app_with, test_settings};

/// The key the test nodes accept (32 characters or more, as the setting requires).
pub const API_KEY: &str = "test-api-key-0123456789abcdef-0123456789";

/// A node with the server API on, accepting [`API_KEY`].
pub async fn spawn_api_app(redis: &TestRedis) -> TestApp {
    spawn_app_with(api_settings(redis)).await
}

/// The test settings with the server API on, for a test to change further.
pub fn api_settings(redis: &TestRedis) -> Settings {
    let mut settings = test_settings(redis);
    settings.api_key = Some(API_KEY.into());
    settings
}

/// A caller of one node's API, with a key (or none).
pub struct ApiClient {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// An answer: its status and its body as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiClient {
    /// Calls `app` with the test key.
    pub fn new(app: &TestApp) -> Self {
        Self::with_key(app, Some(API_KEY))
    }

    pub fn with_key(app: &TestApp, key: Option<&str>) -> Self {
        Self {
            base: format!("{}/api", app.url()),
            key: key.map(str::to_owned),
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, body.to_string()).await
    }

    /// POSTs `body` as it is, JSON or not.
    pub async fn post_raw(&self, path: &str, body: String) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<String>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the node answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body }
    }
}

/// A userID as it goes into a path: percent-encoded, every byte but the unreserved ones.
pub fn in_path(user: &str) -> String {
    let mut out = String::new();
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
