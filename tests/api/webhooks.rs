//! Webhooks (docs/protocol.md, "Webhooks"): a real HTTP receiver on port 0, two nodes, standalone
//! and cluster. The signature is checked here with its own HMAC, not the server's function.
//! A node that dies and a Redis restart: `webhook_failover.rs`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::{
    helpers::{
        ApiClient, Received, Receiver, Scraped, TestApp, TestClient, TestRedis, api_settings,
        eventually_within, in_path, spawn_app_with,
    },
    on_standalone_and_cluster,
};

pub(crate) const SECRET: &str = "webhook-secret-0123456789abcdef-0123";
/// Long enough for a retry or two (1 s, 2 s) and a loaded machine.
pub(crate) const DELIVERED: Duration = Duration::from_secs(30);

pub(crate) async fn node(redis: &TestRedis, receiver: &Receiver, events: &str) -> TestApp {
    node_after(redis, receiver, events, UNREAD_AFTER).await
}

/// WEBHOOK_UNREAD_AFTER_SECS in these tests: short, with room for a `messages read` on a
/// loaded machine.
const UNREAD_AFTER: u64 = 2;

pub(crate) async fn node_after(
    redis: &TestRedis,
    receiver: &Receiver,
    events: &str,
    unread_after: u64,
) -> TestApp {
    let mut settings = api_settings(redis);
    settings.rate_limit_per_sec = 0.0;
    settings.webhook_url = Some(receiver.url.clone());
    settings.webhook_secret = Some(SECRET.into());
    settings.webhook_events = events.into();
    settings.webhook_unread_after_secs = unread_after;
    spawn_app_with(settings).await
}

/// Checks the signature with HMAC-SHA256 of the raw body, as a receiver does.
pub(crate) fn assert_signed(request: &Received) {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("a key");
    mac.update(&request.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        request.header("x-privmsg-signature"),
        format!("sha256={hex}")
    );
}

/// The sum over `node`'s `privmsg_webhook_deliveries_total` samples of `kind` and `result`.
pub(crate) async fn deliveries(node: &impl Scraped, kind: &str, result: &str) -> u64 {
    let text = reqwest::get(node.metrics_url())
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    let (kind, result) = (format!("type=\"{kind}\""), format!("result=\"{result}\""));
    text.lines()
        .filter(|line| line.starts_with("privmsg_webhook_deliveries_total{"))
        .filter(|line| line.contains(&kind) && line.contains(&result))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub(crate) async fn gauge(node: &impl Scraped, name: &str) -> u64 {
    crate::helpers::metric(node, name).await
}

pub(crate) async fn queued(redis: &TestRedis) -> u64 {
    redis::cmd("ZCARD")
        .arg("privmsg:webhooks")
        .query_async(&mut redis.conn().await)
        .await
        .expect("ZCARD")
}

/// `message.created`, from a socket on one node and from the server API on the other: the
/// body, the headers and the signature exactly as docs/protocol.md says.
async fn created_is_signed_with_the_body_and_headers_of_the_contract(redis: TestRedis) {
    let receiver = Receiver::start().await;
    let one = node(&redis, &receiver, "message.created").await;
    let two = node(&redis, &receiver, "message.created").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;

    let sent = ann.send_to(&bob.user_id, "hello bob").await["message"].clone();
    let first = receiver.wait_for(1, DELIVERED).await;
    let answer = ApiClient::new(&two)
        .post(
            "/messages",
            &json!({ "from": bob.user_id, "to": ann.user_id, "content": "from the backend" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let both = receiver.wait_for(2, DELIVERED).await;
    assert_eq!(both[0].body, first[0].body);

    for (request, message, recipient) in [
        (&both[0], &sent, (&bob.user_id, "bob")),
        (&both[1], &answer.body["message"], (&ann.user_id, "ann")),
    ] {
        assert_signed(request);
        let body = request.json();
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("x-privmsg-event"), "message.created");
        assert_eq!(request.header("x-privmsg-delivery"), body["id"]);
        let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
        assert_eq!(keys.len(), 4, "{body}");
        assert_eq!(body["type"], "message.created");
        assert_eq!(body["createdAt"], message["timestamp"]);
        assert_eq!(
            body["data"],
            json!({
                "message": message,
                "recipient": { "userID": recipient.0, "username": recipient.1 },
            })
        );
    }
    assert_eq!(receiver.received().len(), 2, "one delivery each");
}

/// `message.unread` once the delay has passed without a read mark; none for a message read in
/// time, none for a message to oneself.
async fn unread_after_the_delay_and_never_when_read_in_time(redis: TestRedis) {
    let receiver = Receiver::start().await;
    let one = node(&redis, &receiver, "message.unread").await;
    let two = node(&redis, &receiver, "message.unread").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;

    let note = ann.send_to(&ann.user_id, "a note to self").await;
    assert!(note["message"].is_object(), "{note}");
    assert_eq!(
        queued(&redis).await,
        0,
        "nothing queued for a message to oneself"
    );
    let read = ann.send_to(&bob.user_id, "read in time").await["message"].clone();
    let ack = bob
        .client
        .ask(
            "messages read",
            json!({ "with": ann.user_id, "upTo": read["id"] }),
        )
        .await;
    assert_eq!(ack, json!({}));
    let unread = ann.send_to(&bob.user_id, "left unread").await["message"].clone();

    let got = receiver.wait_for(1, DELIVERED).await;
    let body = got[0].json();
    assert_eq!(got[0].header("x-privmsg-event"), "message.unread");
    assert_eq!(body["type"], "message.unread");
    assert_eq!(body["data"]["message"], unread);
    let stored = unread["timestamp"].as_u64().expect("a timestamp");
    let created = body["createdAt"].as_u64().expect("createdAt");
    assert_eq!(
        created,
        stored + UNREAD_AFTER * 1000,
        "createdAt: when it became unread"
    );
    assert_signed(&got[0]);
    // The read one was settled as read (on either node), and nothing is left queued.
    eventually_within(
        DELIVERED,
        async || {
            let read = deliveries(&one, "message.unread", "read").await
                + deliveries(&two, "message.unread", "read").await;
            read == 1 && queued(&redis).await == 0
        },
        "the read message's unread webhook dropped",
    )
    .await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
}

/// A receiver that answers 500 twice: the third try delivers, with the same delivery id and
/// the same signed body each time.
async fn retries_after_500s_with_the_same_delivery_id(redis: TestRedis) {
    let receiver = Receiver::start().await;
    receiver.fail_next(2);
    let one = node(&redis, &receiver, "message.created").await;
    let two = node(&redis, &receiver, "message.created").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;

    ann.send_to(&bob.user_id, "try again").await;

    let tries = receiver.wait_for(3, DELIVERED).await;
    let id = tries[0].header("x-privmsg-delivery");
    for attempt in &tries {
        assert_eq!(attempt.header("x-privmsg-delivery"), id);
        assert_eq!(attempt.body, tries[0].body);
        assert_signed(attempt);
    }
    eventually_within(
        DELIVERED,
        async || {
            let delivered = deliveries(&one, "message.created", "delivered").await
                + deliveries(&two, "message.created", "delivered").await;
            let retried = deliveries(&one, "message.created", "retry").await
                + deliveries(&two, "message.created", "retry").await;
            (delivered, retried, queued(&redis).await) == (1, 2, 0)
        },
        "one delivery after two retries, nothing left queued",
    )
    .await;
    assert_eq!(receiver.received().len(), 3);
}

/// A message and its webhooks are stored all or none: a message refused (a history that
/// cannot take it) leaves no delivery queued, and a queue that cannot take the delivery (a key
/// of another type) refuses the message, stored nowhere.
async fn a_message_and_its_webhooks_are_stored_all_or_none(redis: TestRedis) {
    let receiver = Receiver::start().await;
    let one = node(&redis, &receiver, "message.unread").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&one, "bob").await;
    let carol = TestClient::join(&one, "carol").await;
    redis.break_history(&bob.user_id).await;

    let refused = ann.send_to(&bob.user_id, "refused").await;
    assert_eq!(refused["error"], "storage unavailable, message not sent");
    // On a cluster the queued delivery is taken back after the refusal: waited for (it is
    // due only after UNREAD_AFTER, so no worker sends it meanwhile).
    eventually_within(
        DELIVERED,
        async || queued(&redis).await == 0,
        "no delivery left for a refused message",
    )
    .await;

    let () = redis::cmd("SET")
        .arg("privmsg:webhooks")
        .arg("not a sorted set")
        .query_async(&mut redis.conn().await)
        .await
        .expect("SET");
    let refused = ann.send_to(&carol.user_id, "no webhook, no message").await;
    assert_eq!(refused["error"], "storage unavailable, message not sent");
    eventually_within(
        DELIVERED,
        async || {
            redis.history(&carol.user_id).await.is_empty()
                && redis.history(&ann.user_id).await.is_empty()
        },
        "the refused messages taken back out of every history",
    )
    .await;
    assert!(receiver.received().is_empty());
}

/// A job for a message from a user its recipient blocks is never sent: one is queued by hand
/// (as a cluster leaves one for a round trip before taking it back), and the worker drops it;
/// the same job once unblocked is sent (so the drop is the block's doing).
async fn a_queued_job_to_a_recipient_that_blocks_its_sender_is_dropped(redis: TestRedis) {
    let receiver = Receiver::start().await;
    let one = node(&redis, &receiver, "message.created").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&one, "bob").await;
    ann.send_to(&bob.user_id, "before the block").await;
    let sent = receiver.wait_for(1, DELIVERED).await;
    let job = sent[0].json();
    let queue_as = |id: &str| {
        let mut job = job.clone();
        job["id"] = json!(id);
        job.to_string()
    };
    let enqueue = async |member: String| {
        redis::cmd("ZADD")
            .arg("privmsg:webhooks")
            .arg(0)
            .arg(member)
            .query_async::<i64>(&mut redis.conn().await)
            .await
            .expect("ZADD");
    };

    let ack = bob
        .client
        .ask("block user", json!({ "userID": ann.user_id }))
        .await;
    assert_eq!(ack, json!({ "blocked": [ann.user_id] }));
    enqueue(queue_as("forged-while-blocked")).await;
    eventually_within(
        DELIVERED,
        async || deliveries(&one, "message.created", "blocked").await == 1,
        "the job to be dropped as blocked",
    )
    .await;
    assert_eq!(queued(&redis).await, 0);

    bob.client
        .ask("unblock user", json!({ "userID": ann.user_id }))
        .await;
    enqueue(queue_as("forged-after-unblock")).await;
    let both = receiver.wait_for(2, DELIVERED).await;
    assert_eq!(both[1].header("x-privmsg-delivery"), "forged-after-unblock");
    assert_eq!(receiver.received().len(), 2, "the blocked one never sent");
}

/// The sum over `nodes` of [`deliveries`].
async fn deliveries_on(nodes: &[&TestApp], kind: &str, result: &str) -> u64 {
    let mut sum = 0;
    for node in nodes {
        sum += deliveries(*node, kind, result).await;
    }
    sum
}

/// The queued jobs, as JSON.
async fn queued_jobs(redis: &TestRedis) -> Vec<serde_json::Value> {
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("privmsg:webhooks")
        .arg(0)
        .arg(-1)
        .query_async(&mut redis.conn().await)
        .await
        .expect("ZRANGE");
    members
        .iter()
        .map(|member| serde_json::from_str(member).expect("a job"))
        .collect()
}

/// A message deleted by its sender, and one erased with its sender (`DELETE /api/users/{id}`),
/// before their `message.unread` is due are never posted; a message sent right after them,
/// due later, is.
async fn no_unread_webhook_for_a_message_deleted_or_erased_before_it_is_due(redis: TestRedis) {
    let receiver = Receiver::start().await;
    // Room for the delete and the erasure before the first is due, on a loaded machine.
    let one = node_after(&redis, &receiver, "message.unread", 4).await;
    let two = node_after(&redis, &receiver, "message.unread", 4).await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;
    let carol = TestClient::join(&two, "carol").await;

    let doomed = ann.send_to(&bob.user_id, "deleted before it is due").await["message"].clone();
    let erased = carol.send_to(&bob.user_id, "erased with carol").await["message"].clone();
    let kept = ann.send_to(&bob.user_id, "sent after them").await["message"].clone();
    assert_eq!(queued(&redis).await, 3);
    let ack = ann.delete_message(&bob.user_id, &doomed["id"]).await;
    assert_eq!(ack, json!({}));
    let path = format!("/users/{}", in_path(&carol.user_id));
    let answer = ApiClient::new(&one).delete(&path).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let got = receiver.wait_for(1, DELIVERED).await;
    assert_eq!(got[0].json()["data"]["message"], kept);
    eventually_within(
        DELIVERED,
        async || {
            deliveries_on(&[&one, &two], "message.unread", "deleted").await == 2
                && queued(&redis).await == 0
        },
        "the deleted and the erased message's deliveries dropped",
    )
    .await;
    let sent: Vec<String> = receiver
        .received()
        .iter()
        .map(|request| request.json()["data"]["message"]["content"].to_string())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?} ({erased})");
}

/// An edited message's `message.unread` carries the message as edited (`editedAt` too), under
/// the delivery id it was queued with, the same on a retry; the queued job is not rewritten.
async fn an_edited_message_is_posted_as_edited_with_its_delivery_id(redis: TestRedis) {
    let receiver = Receiver::start().await;
    receiver.fail_next(1);
    let one = node(&redis, &receiver, "message.unread").await;
    let two = node(&redis, &receiver, "message.unread").await;
    let ann = TestClient::join(&one, "ann").await;
    let bob = TestClient::join(&two, "bob").await;

    let sent = ann.send_to(&bob.user_id, "as sent").await["message"].clone();
    let ack = ann
        .edit_message(&bob.user_id, &sent["id"], "as edited")
        .await;
    let edited = ack["message"].clone();
    assert!(edited["editedAt"].is_u64(), "{ack}");
    let jobs = queued_jobs(&redis).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0]["data"]["message"], sent,
        "the job keeps what was queued"
    );

    let tries = receiver.wait_for(2, DELIVERED).await;
    for attempt in &tries {
        assert_signed(attempt);
        let body = attempt.json();
        assert_eq!(attempt.header("x-privmsg-delivery"), jobs[0]["id"]);
        assert_eq!(body["id"], jobs[0]["id"]);
        assert_eq!(body["data"]["message"], edited);
        assert_eq!(body["data"]["message"]["content"], "as edited");
        assert_eq!(body["createdAt"], jobs[0]["createdAt"]);
    }
    assert_eq!(
        tries[1].body, tries[0].body,
        "the retry sends the same body"
    );
    eventually_within(
        DELIVERED,
        async || {
            deliveries_on(&[&one, &two], "message.unread", "delivered").await == 1
                && queued(&redis).await == 0
        },
        "the edited message delivered once",
    )
    .await;
    assert_eq!(receiver.received().len(), 2);
}

on_standalone_and_cluster!(
    a_queued_job_to_a_recipient_that_blocks_its_sender_is_dropped,
    a_message_and_its_webhooks_are_stored_all_or_none,
    created_is_signed_with_the_body_and_headers_of_the_contract,
    unread_after_the_delay_and_never_when_read_in_time,
    retries_after_500s_with_the_same_delivery_id,
    no_unread_webhook_for_a_message_deleted_or_erased_before_it_is_due,
    an_edited_message_is_posted_as_edited_with_its_delivery_id,
);
