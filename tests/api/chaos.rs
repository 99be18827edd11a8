//! Chaos (issue #12, item 5): real node processes killed (SIGKILL) and stopped (SIGTERM) in
//! the middle of a connect storm and a message flood, on a standalone Redis and on a Redis
//! Cluster. Once every client has left: every session is offline within the documented bound
//! (`NODE_TTL_SECS` + a heartbeat for the killed node), no presence field is left anywhere,
//! every acknowledged message is in both histories, and an observer never heard a user come
//! online after that user's final departure.

use std::{collections::HashMap, time::Duration};

use futures_util::future::join_all;
use serde_json::Value;

use crate::{
    helpers::{
        Connected, NodeProcess, Server, TestClient, TestCluster, TestRedis, eventually_within,
        spawn_app_with, test_settings,
    },
    on_standalone_and_cluster,
};

/// Users per wave; two waves.
const WAVE: usize = 12;
/// Messages each user sends per round.
const MESSAGES: usize = 3;
/// The killed node's liveness, in seconds: short, so that its users go offline soon.
const NODE_TTL: &str = "3";
/// How long after the last client left every session must be offline: the killed node's
/// liveness plus a heartbeat, with a wide margin for a busy machine.
const BOUND: Duration = Duration::from_secs(30);

/// An acknowledged message: its id, its sender and its recipient.
type Acked = (String, String, String);

/// Joins `count` users named `{prefix}{i}` at once, spread over `nodes` in turn.
async fn wave(nodes: &[&dyn Server], prefix: &str, count: usize) -> Vec<Connected> {
    join_all((0..count).map(|i| {
        let url = nodes[i % nodes.len()].url();
        async move {
            TestClient::join_url(
                url,
                serde_json::json!({ "username": format!("{prefix}{i}") }),
                rust_socketio::TransportType::Websocket,
            )
            .await
        }
    }))
    .await
}

/// Every user sends `MESSAGES` messages to the next one, all at once; returns what was
/// acknowledged as stored (a user whose node is gone gets no ack, or an error).
async fn flood(users: &[Connected], round: usize) -> Vec<Acked> {
    let sends = users.iter().enumerate().map(|(i, from)| {
        let to = &users[(i + 1) % users.len()];
        async move {
            let mut acked = Vec::new();
            for m in 0..MESSAGES {
                let payload =
                    serde_json::json!({ "content": format!("r{round}m{m}"), "to": to.user_id });
                if let Some(ack) = from.client.try_send(payload).await
                    && let Some(id) = ack["message"]["id"].as_str()
                {
                    acked.push((id.to_owned(), from.user_id.clone(), to.user_id.clone()));
                }
            }
            acked
        }
    });
    join_all(sends).await.into_iter().flatten().collect()
}

/// Waits (up to [`BOUND`]) until every one of `users` is offline with no presence field left.
async fn all_offline(redis: &TestRedis, users: &[Connected]) {
    eventually_within(
        BOUND,
        async || {
            for user in users {
                let online = redis.connected(&user.session_id).await;
                let sockets = redis.sockets(&user.session_id).await;
                if online.as_deref() != Some("false") || sockets != 0 {
                    return Err(format!(
                        "{} still online ({online:?}, {sockets} sockets)",
                        user.user_id
                    ));
                }
            }
            Ok(())
        },
        "every session offline, with no presence field left",
    )
    .await;
}

/// Asserts that every acknowledged message is in its sender's and its recipient's history.
async fn all_stored(redis: &TestRedis, acked: &[Acked]) {
    for (id, from, to) in acked {
        for user in [from, to] {
            assert!(
                redis.history_ids(user).await.contains(id),
                "acknowledged {id} missing from {user}'s history"
            );
        }
    }
}

/// The presence events `observer` received, per user, in order: true for online.
fn presence_by_user(observer: &mut Connected) -> HashMap<String, Vec<bool>> {
    observer.client.was_dropped(); // takes in whatever arrived
    let mut by_user: HashMap<String, Vec<bool>> = HashMap::new();
    for (event, payload) in &observer.client.seen {
        let (user, online) = match event.as_str() {
            "user connected" => (payload["userID"].as_str(), true),
            "user disconnected" => (payload.as_str(), false),
            _ => continue,
        };
        if let Some(user) = user {
            by_user.entry(user.to_owned()).or_default().push(online);
        }
    }
    by_user
}

async fn nodes_killed_and_stopped_mid_storm_leave_nothing_behind(redis: TestRedis) {
    let env = [("NODE_TTL_SECS", NODE_TTL), ("RATE_LIMIT_PER_SEC", "0")];
    let mut killed = NodeProcess::start(&redis, &env).await;
    let mut stopped = NodeProcess::start(&redis, &env).await;
    let mut settings = test_settings(&redis);
    settings.node_ttl_secs = 3;
    settings.rate_limit_per_sec = 0.0;
    let survivor = spawn_app_with(settings).await;
    let mut observer = TestClient::join(&survivor, "observer").await;

    // A first wave on all three nodes, and its messages.
    let mut users = wave(&[&killed, &stopped, &survivor], "first", WAVE).await;
    let mut acked = flood(&users, 0).await;
    // The second wave joins and the flood goes on while one node is killed.
    let living: [&dyn Server; 2] = [&stopped, &survivor];
    let (second, during_kill, ()) = tokio::join!(
        wave(&living, "second", WAVE),
        flood(&users, 1),
        killed.kill(),
    );
    acked.extend(during_kill);
    users.extend(second);
    // Another round while the next node drains and exits.
    let (during_stop, ()) = tokio::join!(flood(&users, 2), stopped.terminate());
    acked.extend(during_stop);
    for user in &users {
        user.client.close().await;
    }

    all_offline(&redis, &users).await;
    all_stored(&redis, &acked).await;
    // A newcomer on a fresh node: its arrival reaches the observer through the presence
    // channel after everything published before it, the departures of the dead nodes' users
    // included. After that, each user's last event must be its departure.
    let fresh = NodeProcess::start(&redis, &env).await;
    let marker = TestClient::join(&fresh, "marker").await;
    loop {
        let event = observer.client.expect("user connected").await;
        if event["userID"] == Value::String(marker.user_id.clone()) {
            break;
        }
    }
    let heard = presence_by_user(&mut observer);
    for user in &users {
        if let Some(events) = heard.get(&user.user_id) {
            assert_eq!(
                events.last(),
                Some(&false),
                "{} heard online after leaving: {events:?}",
                user.user_id
            );
        }
    }
    println!(
        "{} users, {} messages acknowledged, {} users heard of by the observer",
        users.len(),
        acked.len(),
        heard.len()
    );
    assert!(!acked.is_empty(), "some messages were acknowledged");
}

on_standalone_and_cluster!(nodes_killed_and_stopped_mid_storm_leave_nothing_behind,);

/// Redis restarted in the middle of the storm: users leave while it is down (their departures
/// cannot be saved then) and others keep sending. Once it is back and every client has left,
/// every session is offline with no presence field left, and every acknowledged message is in
/// both histories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departures_during_a_redis_restart_are_saved_once_it_is_back() {
    let mut redis = TestRedis::start_durable().await;
    let env = [("RATE_LIMIT_PER_SEC", "0")];
    let process = NodeProcess::start(&redis, &env).await;
    let mut settings = test_settings(&redis);
    settings.rate_limit_per_sec = 0.0;
    let node = spawn_app_with(settings).await;
    let users = wave(&[&process, &node], "user", WAVE).await;
    let (leaving, staying) = users.split_at(WAVE / 2);
    let mut acked = flood(&users, 0).await;

    redis.stop().await;
    let (during, ()) = tokio::join!(flood(staying, 1), async {
        for user in leaving {
            user.client.close().await;
        }
    });
    acked.extend(during);
    redis.restart().await;
    acked.extend(flood(staying, 2).await);
    for user in staying {
        user.client.close().await;
    }

    all_offline(&redis, &users).await;
    all_stored(&redis, &acked).await;
}

/// The same on a Redis Cluster whose every master is stopped in the middle of the storm and
/// started again (the nodes keep their append-only files): departures taken while the cluster
/// is down are saved once it serves again, and no acknowledged message is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departures_during_a_cluster_restart_are_saved_once_it_is_back() {
    let mut cluster = TestCluster::start(0).await;
    let env = [("RATE_LIMIT_PER_SEC", "0")];
    let process = NodeProcess::start(&cluster.redis, &env).await;
    let mut settings = test_settings(&cluster.redis);
    settings.rate_limit_per_sec = 0.0;
    let node = spawn_app_with(settings).await;
    let users = wave(&[&process, &node], "user", WAVE).await;
    let (leaving, staying) = users.split_at(WAVE / 2);
    let mut acked = flood(&users, 0).await;

    cluster.stop_all().await;
    let (during, ()) = tokio::join!(flood(staying, 1), async {
        for user in leaving {
            user.client.close().await;
        }
    });
    acked.extend(during);
    cluster.start_all().await;
    cluster.serving().await;
    acked.extend(flood(staying, 2).await);
    for user in staying {
        user.client.close().await;
    }

    all_offline(&cluster.redis, &users).await;
    all_stored(&cluster.redis, &acked).await;
}
