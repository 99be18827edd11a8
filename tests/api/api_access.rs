//! The server API's door: the bearer key, no API without API_KEY, a short key refusing to
//! start, bodies refused with their reason (400) or for their size (413), unknown users (404),
//! and every request counted by endpoint and status.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::{
    API_KEY, ApiClient, TestClient, TestRedis, WAIT, in_path, metric, spawn_api_app, spawn_app,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_key_or_with_a_wrong_one_is_refused_401() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let path = format!("/users/{}", in_path(&alice.user_id));
    let wrong = format!("{API_KEY}x");

    for key in [None, Some(wrong.as_str()), Some(&API_KEY[..31]), Some("")] {
        let answer = ApiClient::with_key(&app, key).get(&path).await;
        assert_eq!(answer.status, 401, "{key:?}");
        assert_eq!(answer.body, json!({ "error": "unauthorized" }));
    }
    let answer = ApiClient::new(&app).get(&path).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_api_key_there_is_no_api() {
    let redis = TestRedis::start().await;
    let with_api = spawn_api_app(&redis).await;
    let without = spawn_app(&redis).await;
    let alice = TestClient::join(&with_api, "alice").await;
    let path = format!("/users/{}", in_path(&alice.user_id));

    assert_eq!(ApiClient::new(&with_api).get(&path).await.status, 200);
    assert_eq!(ApiClient::new(&without).get(&path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_key_refuses_to_start_naming_api_key_and_never_the_key() {
    let redis = TestRedis::start().await;
    let url = match &redis.target {
        privmsg::store::RedisTarget::Standalone(url) => url.clone(),
        privmsg::store::RedisTarget::Cluster(_) | privmsg::store::RedisTarget::Sentinel(_) => {
            unreachable!("a standalone Redis")
        }
    };
    let child = Command::new(env!("CARGO_BIN_EXE_privmsg-server"))
        .env_clear()
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("METRICS_ADDR", "off")
        .env("REDIS_URL", url)
        .env("API_KEY", format!("{API_KEY},too-short-secret"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");

    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the server exits at once")
        .expect("its output");

    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("API_KEY"), "{log}");
    assert!(
        !log.contains("too-short-secret") && !log.contains(API_KEY),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_body_is_refused_400_with_its_reason_and_nothing_is_stored() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let api = ApiClient::new(&app);
    let (alice, bob) = (
        TestClient::join(&app, "alice").await,
        TestClient::join(&app, "bob").await,
    );
    let (a, b) = (alice.user_id.as_str(), bob.user_id.as_str());
    let too_long = "x".repeat(4097);
    let cases: [(Value, &str); 11] = [
        (
            json!([a, b, "hi"]),
            "invalid payload: expected an object { from, to, content }",
        ),
        (json!({ "to": b, "content": "hi" }), "from must be a userID"),
        (
            json!({ "from": 42, "to": b, "content": "hi" }),
            "from must be a userID",
        ),
        (
            json!({ "from": "a b", "to": b, "content": "hi" }),
            "from must be a userID",
        ),
        (json!({ "from": a, "content": "hi" }), "to must be a userID"),
        (
            json!({ "from": a, "to": [b], "content": "hi" }),
            "to must be a userID",
        ),
        (
            json!({ "from": a, "to": "x\ny", "content": "hi" }),
            "to must be a userID",
        ),
        (
            json!({ "from": a, "to": b }),
            "content must be a non-empty string",
        ),
        (
            json!({ "from": a, "to": b, "content": 7 }),
            "content must be a non-empty string",
        ),
        (
            json!({ "from": a, "to": b, "content": "  " }),
            "content must be a non-empty string",
        ),
        (
            json!({ "from": a, "to": b, "content": too_long }),
            "content is longer than 4096 bytes",
        ),
    ];

    for (body, reason) in cases {
        let answer = api.post("/messages", &body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body, json!({ "error": reason }), "{body}");
    }
    let answer = api.post_raw("/messages", "{not json".into()).await;
    assert_eq!(answer.status, 400);
    let reason = answer.body["error"].as_str().expect("a reason");
    assert!(reason.starts_with("body is not JSON"), "{reason}");
    let answer = api.get(&format!("/users/{}", in_path("a b"))).await;
    assert_eq!(answer.body, json!({ "error": "userID must be a userID" }));
    assert_eq!(answer.status, 400);

    assert!(redis.history(a).await.is_empty() && redis.history(b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_bound_is_refused_413() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let api = ApiClient::new(&app);
    let alice = TestClient::join(&app, "alice").await;
    let a = alice.user_id.as_str();
    // The bound: MAX_MESSAGE_BYTES (4096) written as six-byte escapes, plus 4 KiB.
    let bound = 4096 * 6 + 4096;
    let escaped = "\\u0001".repeat(4096);
    let at_the_limit = format!(r#"{{"from":"{a}","to":"{a}","content":"{escaped}"}}"#);
    assert!(at_the_limit.len() <= bound);
    let over = format!(
        r#"{{"from":"{a}","to":"{a}","content":"{}"}}"#,
        "x".repeat(bound)
    );

    let answer = api.post_raw("/messages", at_the_limit).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let answer = api.post_raw("/messages", over).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.body, json!({ "error": "body too large" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_userid_naming_no_stored_user_is_404() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let api = ApiClient::new(&app);
    let alice = TestClient::join(&app, "alice").await;
    let (a, nobody) = (alice.user_id.as_str(), "auth0|nobody-here");
    let unknown = json!({ "error": "unknown user" });
    let path = format!("/users/{}", in_path(nobody));

    for answer in [
        api.get(&path).await,
        api.get(&format!("{path}/export")).await,
        api.delete(&path).await,
        api.post(
            "/messages",
            &json!({ "from": nobody, "to": a, "content": "hi" }),
        )
        .await,
        api.post(
            "/messages",
            &json!({ "from": a, "to": nobody, "content": "hi" }),
        )
        .await,
    ] {
        assert_eq!(answer.status, 404, "{answer:?}");
        assert_eq!(answer.body, unknown);
    }
    assert!(redis.history(a).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_counted_by_endpoint_and_status() {
    let redis = TestRedis::start().await;
    let app = spawn_api_app(&redis).await;
    let alice = TestClient::join(&app, "alice").await;
    let path = format!("/users/{}", in_path(&alice.user_id));
    let api = ApiClient::new(&app);

    api.get(&path).await;
    api.get(&path).await;
    api.get("/users/nobody-here").await;
    ApiClient::with_key(&app, None).get(&path).await;
    api.get(&format!("{path}/export")).await;
    api.post("/messages", &json!([])).await;

    let count = |endpoint: &str, status: u16| {
        format!("privmsg_api_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}}")
    };
    let user = "GET /api/users/{userID}";
    assert_eq!(metric(&app, &count(user, 200)).await, 2);
    assert_eq!(metric(&app, &count(user, 404)).await, 1);
    assert_eq!(metric(&app, &count(user, 401)).await, 1);
    let export = "GET /api/users/{userID}/export";
    assert_eq!(metric(&app, &count(export, 200)).await, 1);
    assert_eq!(metric(&app, &count("POST /api/messages", 400)).await, 1);
}
