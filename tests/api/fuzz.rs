//! Generated payloads against the parsing edge and the live handler: no panic, a refusal for
//! everything that is not a valid message, and a valid message always accepted.
//!
//! CI runs a few hundred cases; a dedicated run goes much further:
//! `PROPTEST_CASES=1000000 cargo test --release --test api fuzz::parsing -- --nocapture`.

use privmsg::domain::{OutgoingMessage, PageRequest, ReadRequest, Refusal, Username};
use proptest::{prelude::*, strategy::ValueTree};
use serde_json::{Value, json};

use crate::helpers::{TestClient, TestRedis, spawn_app_with, test_settings};

/// Any JSON value, nested a few levels, with strings that are sometimes userID-like.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        "legacy:[0-9]{1,3}".prop_map(Value::from),
        (0u64..200).prop_map(Value::from),
        "[0-9a-f]{16}".prop_map(Value::from),
        Just(Value::from(uuid::Uuid::new_v4().to_string())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("content".to_owned()),
                    Just("to".to_owned()),
                    Just("with".to_owned()),
                    Just("before".to_owned()),
                    Just("limit".to_owned()),
                    Just("upTo".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parsing_never_panics_and_accepts_only_valid_messages(payload in any_json()) {
        match OutgoingMessage::parse(&payload, 64) {
            Ok(message) => {
                let content = payload["content"].as_str().unwrap_or_default();
                prop_assert!(!content.trim().is_empty() && content.len() <= 64);
                prop_assert_eq!(payload["to"].as_str(), Some(message.to.as_str()));
            }
            Err(refusal) => prop_assert!(refusal != Refusal::StorageUnavailable),
        }
    }

    #[test]
    fn page_requests_never_panic_and_accept_only_valid_ones(payload in any_json()) {
        if let Ok(page) = PageRequest::parse(&payload) {
            prop_assert_eq!(payload["with"].as_str(), Some(page.with.as_str()));
            prop_assert!((1..=100).contains(&page.limit));
        }
    }

    #[test]
    fn read_requests_never_panic_and_accept_only_valid_ones(payload in any_json()) {
        if let Ok(read) = ReadRequest::parse(&payload) {
            prop_assert_eq!(payload["upTo"].as_str(), Some(read.up_to.as_str()));
            prop_assert!(uuid::Uuid::try_parse(&read.up_to).is_ok());
        }
    }

    #[test]
    fn parsing_usernames_never_panics(raw in ".{0,100}") {
        if let Some(name) = Username::parse(&raw) {
            prop_assert!(!name.as_str().is_empty() && name.as_str().chars().count() <= 64);
            prop_assert!(!name.as_str().chars().any(char::is_control));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_handler_answers_every_generated_payload_and_stays_up() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    // This test is about answers, not the per-socket rate limit.
    settings.rate_limit_per_sec = 0.0;
    let app = spawn_app_with(settings).await;
    let cases: usize = std::env::var("FUZZ_LIVE_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    let alice = TestClient::join(&app, "alice").await;
    let mut bob = TestClient::join(&app, "bob").await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_json();

    let mut accepted = 0;
    for _ in 0..cases {
        let payload = strategy.new_tree(&mut runner).unwrap().current();
        let ack = alice.client.send(payload.clone()).await;
        match (ack.get("message"), ack.get("error")) {
            (Some(_), None) => accepted += 1,
            (None, Some(Value::String(_))) => {}
            _ => panic!("{payload} got {ack}"),
        }
    }

    let ack = alice.send_to(&bob.user_id, "still up").await;
    assert_eq!(ack["message"]["content"], "still up");
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "still up"
    );
    // Generated recipients are random IDs: whatever was accepted was addressed to them.
    assert!(accepted < cases);
}

/// The same generated payloads on every other event a client may send with an ack: each gets
/// its event's answer or an `{ error }` with a reason, never silence, and the node stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_answers_every_generated_payload_and_stays_up() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    let app = spawn_app_with(settings).await;
    let alice = TestClient::join(&app, "alice").await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_json();
    // Each event's answer when the payload is valid: the fields that must be there.
    let events: [(&str, &[&str]); 4] = [
        ("fetch messages", &["messages", "more"]),
        ("messages read", &[]),
        ("typing", &[]),
        ("search users", &["users"]),
    ];
    for _ in 0..100 {
        let payload = strategy.new_tree(&mut runner).unwrap().current();
        for (event, fields) in events {
            let ack = alice.client.ask(event, payload.clone()).await;
            let answered = match ack.get("error") {
                Some(error) => error.is_string() && ack.as_object().is_some_and(|o| o.len() == 1),
                None if fields.is_empty() => ack == json!({}),
                None => fields.iter().all(|field| ack.get(field).is_some()),
            };
            assert!(answered, "{event} {payload} got {ack}");
        }
    }
    let ack = alice
        .client
        .ask("fetch messages", json!({ "with": alice.user_id }))
        .await;
    assert_eq!(ack, json!({ "messages": [], "more": false }), "still up");
}
