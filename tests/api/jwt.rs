//! `AUTH=jwt` (docs/protocol.md, "Handshake"): a token signed by the deployment names
//! the user; the same userID and session every time, on every node; `invalid token` for any
//! token that does not name a user, and for no token at all.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestClient, TestRedis, spawn_app_with, test_settings},
    on_standalone_and_cluster,
};
use privmsg::settings::AuthMode;

const SECRET: &str = "a test secret, 32 bytes or longer";

async fn jwt_node(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    settings.auth = AuthMode::Jwt;
    settings.jwt_secret = Some(SECRET.into());
    spawn_app_with(settings).await
}

fn claims(user: &str, name: &str) -> Value {
    json!({ "sub": user, "name": name, "exp": get_current_timestamp() + 600 })
}

fn sign_with(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, key).expect("token encodes")
}

fn token(user: &str, name: &str) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    sign_with(Algorithm::HS256, &key, &claims(user, name))
}

fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn refusal(app: &TestApp, auth: Value) -> String {
    let mut client = TestClient::connect(app, auth).await;
    // `session` is only sent on an accepted connection: it would come before the error.
    let error = client.expect_none_before("session", "error").await;
    error.to_string()
}

async fn a_token_names_the_same_user_and_session_on_every_node(redis: TestRedis) {
    let (one, two) = (jwt_node(&redis).await, jwt_node(&redis).await);
    let user = new_user();

    let first = TestClient::join_with(&one, json!({ "token": token(&user, "ann") })).await;
    assert_eq!(first.user_id, user, "the userID is the token's sub");
    assert_ne!(first.session_id, user);
    assert_eq!(first.listed(&user)["username"], "ann");
    first.client.disconnect().await;

    // A reload elsewhere, with the sessionID the client kept, and a new tab without it.
    let reload = json!({ "token": token(&user, "ann"), "sessionID": first.session_id });
    let again = TestClient::join_with(&two, reload).await;
    let tab = TestClient::join_with(&one, json!({ "token": token(&user, "ann") })).await;
    for restored in [&again, &tab] {
        assert_eq!(restored.session_id, first.session_id);
        assert_eq!(restored.user_id, user);
    }
}

async fn users_talk_under_their_token_identity(redis: TestRedis) {
    let (one, two) = (jwt_node(&redis).await, jwt_node(&redis).await);
    let (ann, bob) = (new_user(), new_user());
    let ann_socket = TestClient::join_with(&one, json!({ "token": token(&ann, "ann") })).await;
    let mut bob_socket = TestClient::join_with(&two, json!({ "token": token(&bob, "bob") })).await;

    let ack = ann_socket.send_to(&bob, "hi bob").await;
    assert_eq!(ack["message"]["from"], ann, "{ack}");
    let received = bob_socket.client.expect("private message").await;
    assert_eq!(received["from"], ann);
    assert_eq!(received["content"], "hi bob");
    assert_eq!(redis.history(&bob).await.len(), 1);
}

on_standalone_and_cluster!(
    a_token_names_the_same_user_and_session_on_every_node,
    users_talk_under_their_token_identity,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_that_does_not_name_a_user_is_refused() {
    let redis = TestRedis::start().await;
    let app = jwt_node(&redis).await;
    let user = new_user();
    let valid = token(&user, "ann");
    let secret = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    let other_key = EncodingKey::from_secret(b"another secret, 32 bytes or more").expect("key");
    let expired = json!({ "sub": user, "name": "ann", "exp": get_current_timestamp() - 3600 });
    let claims_part = valid.split('.').nth(1).expect("three parts").to_owned();
    let cases = [
        ("no auth", Value::Null),
        ("a username alone", json!({ "username": "ann" })),
        ("a token that is not a string", json!({ "token": 42 })),
        ("a malformed token", json!({ "token": "not.a.token" })),
        (
            "an expired token",
            json!({ "token": sign_with(Algorithm::HS256, &secret, &expired) }),
        ),
        (
            "another key",
            json!({ "token": sign_with(Algorithm::HS256, &other_key, &claims(&user, "ann")) }),
        ),
        (
            "another algorithm",
            json!({ "token": sign_with(Algorithm::HS512, &secret, &claims(&user, "ann")) }),
        ),
        // {"alg":"none","typ":"JWT"}, the valid token's claims, no signature.
        (
            "alg none",
            json!({ "token": format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims_part}.") }),
        ),
        (
            "a sub with whitespace",
            json!({ "token": token("user 42", "ann") }),
        ),
        (
            "a sub with a control character",
            json!({ "token": token("user\u{1b}42", "ann") }),
        ),
        (
            "a sub of 129 characters",
            json!({ "token": token(&"u".repeat(129), "ann") }),
        ),
        (
            "a name that is not a username",
            json!({ "token": token(&user, " ") }),
        ),
        (
            "no exp",
            json!({ "token": sign_with(Algorithm::HS256, &secret, &json!({ "sub": user, "name": "ann" })) }),
        ),
    ];
    for (case, auth) in cases {
        let error = refusal(&app, auth).await;
        assert!(error.contains("invalid token"), "{case}: {error}");
    }
    let stored: bool = redis
        .conn()
        .await
        .exists(format!("privmsg:user:{user}"))
        .await
        .expect("EXISTS");
    assert!(!stored, "no session stored for the token's user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_of_another_user_never_lends_its_identity() {
    let redis = TestRedis::start().await;
    let app = jwt_node(&redis).await;
    let (ann, mallory) = (new_user(), new_user());
    let ann_session = TestClient::join_with(&app, json!({ "token": token(&ann, "ann") })).await;

    let stolen =
        json!({ "token": token(&mallory, "mallory"), "sessionID": ann_session.session_id });
    let joined = TestClient::join_with(&app, stolen).await;

    assert_eq!(joined.user_id, mallory);
    assert_ne!(joined.session_id, ann_session.session_id);
    // And a sessionID without a token is no way in either.
    let alone = refusal(&app, json!({ "sessionID": ann_session.session_id })).await;
    assert!(alone.contains("invalid token"), "{alone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_s_name_renames_the_user() {
    let redis = TestRedis::start().await;
    let app = jwt_node(&redis).await;
    let user = new_user();
    let first = TestClient::join_with(&app, json!({ "token": token(&user, "ann") })).await;
    first.client.disconnect().await;

    let renamed = TestClient::join_with(&app, json!({ "token": token(&user, "Ann B.") })).await;

    assert_eq!(renamed.session_id, first.session_id);
    assert_eq!(renamed.listed(&user)["username"], "Ann B.");
}

/// The userIDs in a `search users` answer, in order.
fn found(answer: &Value) -> Vec<&str> {
    answer["users"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list of users: {answer}"))
        .iter()
        .map(|user| user["userID"].as_str().expect("a userID"))
        .collect()
}

async fn a_renamed_user_is_found_by_its_new_name_and_no_longer_by_its_old_one(redis: TestRedis) {
    let app = jwt_node(&redis).await;
    let user = new_user();
    let caller = TestClient::join_with(&app, json!({ "token": token(&new_user(), "zed") })).await;
    let first = TestClient::join_with(&app, json!({ "token": token(&user, "Alice") })).await;
    first.client.disconnect().await;

    let renamed = TestClient::join_with(&app, json!({ "token": token(&user, "Bob") })).await;

    assert_eq!(renamed.session_id, first.session_id);
    let by_old_name = caller
        .client
        .ask("search users", json!({ "query": "ali" }))
        .await;
    let by_new_name = caller
        .client
        .ask("search users", json!({ "query": "bob" }))
        .await;
    assert_eq!(found(&by_old_name), Vec::<&str>::new(), "{by_old_name}");
    assert_eq!(found(&by_new_name), [user.as_str()], "{by_new_name}");
    assert_eq!(by_new_name["users"][0]["username"], "Bob");
}

on_standalone_and_cluster!(a_renamed_user_is_found_by_its_new_name_and_no_longer_by_its_old_one);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_that_changes_only_the_case_keeps_the_user_found() {
    let redis = TestRedis::start().await;
    let app = jwt_node(&redis).await;
    let user = new_user();
    let caller = TestClient::join_with(&app, json!({ "token": token(&new_user(), "zed") })).await;
    let first = TestClient::join_with(&app, json!({ "token": token(&user, "alice") })).await;
    first.client.disconnect().await;

    TestClient::join_with(&app, json!({ "token": token(&user, "Alice") })).await;

    let answer = caller
        .client
        .ask("search users", json!({ "query": "ali" }))
        .await;
    assert_eq!(found(&answer), [user.as_str()], "{answer}");
    assert_eq!(answer["users"][0]["username"], "Alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_token_on_two_nodes_at_once_makes_one_session() {
    let redis = TestRedis::start().await;
    let (one, two) = (jwt_node(&redis).await, jwt_node(&redis).await);
    for _ in 0..5 {
        let user = new_user();
        let auth = json!({ "token": token(&user, "ann") });
        let (a, b) = tokio::join!(
            TestClient::join_with(&one, auth.clone()),
            TestClient::join_with(&two, auth)
        );
        assert_eq!(
            a.session_id, b.session_id,
            "both tabs share the user's session"
        );
    }
}

/// RS256 and ES256: the public key file decides the algorithm; a token signed by another
/// algorithm (HS256 with the public key as the secret: the classic confusion) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_files_verify_rs256_and_es256_tokens() {
    let redis = TestRedis::start().await;
    for (genpkey, algorithm) in [
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            Algorithm::RS256,
        ),
        (
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            Algorithm::ES256,
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let private = dir.path().join("private.pem");
        let public = dir.path().join("public.pem");
        openssl(&[&["genpkey"], genpkey, &["-out", path(&private)]].concat()).await;
        openssl(&[
            "pkey",
            "-in",
            path(&private),
            "-pubout",
            "-out",
            path(&public),
        ])
        .await;
        let mut settings = test_settings(&redis);
        settings.auth = AuthMode::Jwt;
        settings.jwt_secret = None;
        settings.jwt_public_key_file = Some(public.clone());
        let app = spawn_app_with(settings).await;
        let pem = std::fs::read(&private).expect("private key");
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .expect("signing key");
        let user = new_user();

        let joined = TestClient::join_with(
            &app,
            json!({ "token": sign_with(algorithm, &key, &claims(&user, "ann")) }),
        )
        .await;
        assert_eq!(joined.user_id, user, "{algorithm:?}");

        let public_pem = std::fs::read(&public).expect("public key");
        let confused = sign_with(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public_pem).expect("key"),
            &claims(&user, "ann"),
        );
        let error = refusal(&app, json!({ "token": confused })).await;
        assert!(error.contains("invalid token"), "{algorithm:?}: {error}");
        app.stop().await;
    }
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

async fn openssl(args: &[&str]) {
    let status = tokio::process::Command::new("openssl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// docs/deployment.md's way to mint a token (`scripts/mint-token`, openssl alone) makes tokens the server
/// takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_s_minting_script_makes_a_valid_token() {
    let redis = TestRedis::start().await;
    let app = jwt_node(&redis).await;
    let user = new_user();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mint-token");
    let out = tokio::process::Command::new(script)
        .args([user.as_str(), "Ann \"B\"", "600"])
        .env("JWT_SECRET", SECRET)
        .output()
        .await
        .expect("mint-token runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();

    let joined = TestClient::join_with(&app, json!({ "token": token })).await;

    assert_eq!(joined.user_id, user);
    assert_eq!(joined.listed(&user)["username"], "Ann \"B\"");
}

/// A user the Node server stored (16-hex userID) signs in with a token naming it, and finds
/// its history: a deployment moving to tokens keeps its users' conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_a_node_written_user_serves_its_stored_history() {
    const USER: &str = "a1b2c3d4e5f60718";
    const PEER: &str = "0918273645abcdef";
    let redis = TestRedis::start().await;
    redis
        .store_offline_session("1f2e3d4c5b6a7980", USER, "legacy")
        .await;
    redis
        .store_offline_session("ffffffffffffffff", PEER, "old friend")
        .await;
    let old = json!({ "content": "hi", "from": PEER, "to": USER });
    let _: () = redis
        .conn()
        .await
        .rpush(format!("messages:{USER}"), old.to_string())
        .await
        .expect("RPUSH");
    let app = jwt_node(&redis).await;

    let joined = TestClient::join_with(&app, json!({ "token": token(USER, "legacy") })).await;

    assert_eq!(joined.user_id, USER);
    assert_eq!(joined.listed(PEER)["messages"], json!([old]));
}

/// A token for `user` as `name` that expires `secs` from now.
fn token_expiring_in(user: &str, name: &str, secs: u64) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    let claims = json!({ "sub": user, "name": name, "exp": get_current_timestamp() + secs });
    sign_with(Algorithm::HS256, &key, &claims)
}

/// userIDs shaped as Auth0, Clerk and Firebase issue them, unique per test run.
fn provider_users() -> [String; 3] {
    let random = uuid::Uuid::new_v4().simple().to_string();
    [
        format!("auth0|{}", &random[..24]),
        format!("user_2NNEqL2nrIRdJ{}", &random[..13]),
        format!("8Xh3QoGm{}", &random[..20]),
    ]
}

async fn provider_issued_user_ids_connect_and_talk_across_nodes(redis: TestRedis) {
    let (one, two) = (jwt_node(&redis).await, jwt_node(&redis).await);
    let [auth0, clerk, firebase] = provider_users();
    let mut sockets = Vec::new();
    for (user, node) in [(&auth0, &one), (&clerk, &two), (&firebase, &one)] {
        let joined = TestClient::join_with(node, json!({ "token": token(user, "ann") })).await;
        assert_eq!(
            &joined.user_id, user,
            "the session's userID is the token's sub as is"
        );
        sockets.push(joined);
    }

    // Each one to the next, across the two nodes: Auth0 → Clerk → Firebase → Auth0.
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        let (sender, recipient) = (sockets[from].user_id.clone(), sockets[to].user_id.clone());
        let ack = sockets[from].send_to(&recipient, "hello").await;
        assert_eq!(ack["message"]["from"], sender, "{ack}");
        assert_eq!(ack["message"]["to"], recipient, "{ack}");
        let received = sockets[to].client.expect("private message").await;
        assert_eq!(received["from"], sender);
        assert_eq!(received["to"], recipient);
    }
    // The conversation is paged back under those IDs too (its index keyed by both).
    let page = sockets[0]
        .client
        .ask("fetch messages", json!({ "with": clerk }))
        .await;
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{page}");
    assert_eq!(messages[0]["from"], auth0);
}

/// IDs holding what is special in a Redis key, a member or a JSON string: two pairs that
/// would share a conversation key if `:` were not encoded, and quotes and backslashes that
/// the index script must match as the JSON spells them.
async fn user_ids_with_key_and_json_specials_keep_their_conversations_apart(redis: TestRedis) {
    let one = jwt_node(&redis).await;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (x_y, z, x, y_z) = (
        format!("{tag}:y"),
        "z".to_owned(),
        tag.to_owned(),
        "y:z".to_owned(),
    );
    let odd = format!(r#"{tag}{{x}}"q\b|@#"#);
    let mut joined = Vec::new();
    for user in [&x_y, &z, &x, &y_z, &odd] {
        joined.push(TestClient::join_with(&one, json!({ "token": token(user, "ann") })).await);
    }
    let (x_y_socket, x_socket, odd_socket) = (&joined[0], &joined[2], &joined[4]);
    x_y_socket.send_to(&z, "from x:y to z").await;
    x_socket.send_to(&y_z, "from x to y:z").await;
    odd_socket.send_to(&x, "from odd to x").await;

    for (socket, with, content) in [
        (x_y_socket, &z, "from x:y to z"),
        (x_socket, &y_z, "from x to y:z"),
        (x_socket, &odd, "from odd to x"),
        (odd_socket, &x, "from odd to x"),
    ] {
        let page = socket
            .client
            .ask("fetch messages", json!({ "with": with }))
            .await;
        let contents: Vec<&Value> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| &m["content"])
            .collect();
        assert_eq!(contents, [content], "with {with}: {page}");
    }
}

on_standalone_and_cluster!(
    provider_issued_user_ids_connect_and_talk_across_nodes,
    user_ids_with_key_and_json_specials_keep_their_conversations_apart,
);

/// A node in the token mode without leeway, so that a token expires at its `exp`.
async fn strict_jwt_node(redis: &TestRedis) -> TestApp {
    let mut settings = test_settings(redis);
    settings.auth = AuthMode::Jwt;
    settings.jwt_secret = Some(SECRET.into());
    settings.jwt_leeway_secs = 0;
    spawn_app_with(settings).await
}

/// Long enough for any expiry these tests set.
const EXPIRY_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

async fn closes(client: &mut TestClient) -> bool {
    client.wait_for_within("close", EXPIRY_WAIT).await.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_token_expires() {
    let redis = TestRedis::start().await;
    let app = strict_jwt_node(&redis).await;
    let user = new_user();
    let exp = get_current_timestamp() + 2;
    let token = token_expiring_in(&user, "ann", 2);
    let mut joined = TestClient::join_with(&app, json!({ "token": token })).await;

    assert!(closes(&mut joined.client).await, "closed at the expiry");
    assert!(get_current_timestamp() >= exp, "not before the token's exp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_token_keeps_the_socket_open_past_the_first_expiry() {
    let redis = TestRedis::start().await;
    let app = strict_jwt_node(&redis).await;
    let user = new_user();
    let short = token_expiring_in(&user, "ann", 2);
    let mut refreshed = TestClient::join_with(&app, json!({ "token": short })).await;
    // The same token, never refreshed: its close marks the first expiry.
    let mut witness = TestClient::join_with(&app, json!({ "token": short })).await;

    let ack = refreshed
        .client
        .ask(
            "refresh token",
            json!({ "token": token_expiring_in(&user, "ann", 600) }),
        )
        .await;
    assert_eq!(ack, json!({}));

    assert!(closes(&mut witness.client).await, "the witness expires");
    let sent = refreshed.send_to(&user, "still here").await;
    assert_eq!(sent["message"]["content"], "still here", "{sent}");
    assert!(
        !refreshed.client.was_dropped(),
        "open past the first expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_refresh_is_refused_and_the_old_expiry_holds() {
    let redis = TestRedis::start().await;
    let app = strict_jwt_node(&redis).await;
    let user = new_user();
    let mut joined =
        TestClient::join_with(&app, json!({ "token": token_expiring_in(&user, "ann", 3) })).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    let expired = json!({ "sub": user, "name": "ann", "exp": get_current_timestamp() - 60 });
    let bad = [
        json!({ "token": "not.a.token" }),
        json!({ "token": 42 }),
        json!({}),
        json!({ "token": sign_with(Algorithm::HS256, &key, &expired) }),
        json!({ "token": token_expiring_in(&new_user(), "ann", 600) }),
    ];

    for payload in bad {
        let ack = joined.client.ask("refresh token", payload.clone()).await;
        assert_eq!(ack, json!({ "error": "invalid token" }), "{payload}");
    }

    assert!(closes(&mut joined.client).await, "closed at the old expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_session_mode_a_token_refresh_is_refused_and_the_socket_stays() {
    let redis = TestRedis::start().await;
    let app = crate::helpers::spawn_app(&redis).await;
    let mut joined = TestClient::join(&app, "ann").await;

    let ack = joined
        .client
        .ask(
            "refresh token",
            json!({ "token": token(&new_user(), "ann") }),
        )
        .await;

    assert_eq!(ack, json!({ "error": "invalid token" }));
    let user = joined.user_id.clone();
    let sent = joined.send_to(&user, "still here").await;
    assert_eq!(sent["message"]["content"], "still here", "{sent}");
    assert!(!joined.client.was_dropped());
}
