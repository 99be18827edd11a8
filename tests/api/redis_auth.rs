//! A Redis reached over TLS (`rediss://`) with a password: data and adapter both work.

use crate::helpers::{TestClient, TestRedis, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_work_over_a_tls_redis_with_a_password() {
    let redis = TestRedis::start_tls("s3cret-pass").await;
    let (node1, node2) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let alice = TestClient::join(&node1, "alice").await;
    let mut bob = TestClient::join(&node2, "bob").await;

    let ack = alice.send_to(&bob.user_id, "over TLS").await;

    assert_eq!(ack["message"]["content"], "over TLS", "{ack}");
    assert_eq!(
        bob.client.expect("private message").await["content"],
        "over TLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_start_with_an_error() {
    let redis = TestRedis::start_tls("right").await;
    let mut settings = crate::helpers::test_settings(&redis);
    settings.redis_url = settings.redis_url.replace(":right@", ":wrong@");

    let built = privmsg::startup::Application::build(settings).await;

    let error = format!("{:#}", built.err().expect("refused"));
    assert!(
        !error.contains("wrong"),
        "the password leaked into the error: {error}"
    );
}
