//! `--seed-sessions N`: stored sessions written straight into Redis, as the Node server writes
//! them (docs/protocol.md: `session:{sessionID}` hash with `userID`, `username`, `connected`, 24 h
//! TTL), so that a server has N offline users to list or search, as a long-running deployment.
//! With `--seed-index` (implied by `--seed-contacts`) also the contacts-scope index of each
//! user (`privmsg:user:<id>`, `privmsg:usernames`); with `--seed-contacts K`, K contacts each
//! (ring neighbours: `ring.rs`), their sets and one message per pair in both histories.
//!
//! Fast enough for a million: chunks of CHUNK users per pipeline, several pipelines in flight
//! on each of `--seed-connections` connections (the server's RESP parsing, not round trips,
//! is then the limit).

mod layout;

use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::{report::scale::SeedReport, ring};
pub use layout::{Extras, Seeded, USERNAMES_KEY};

/// Users per pipeline: large enough to amortise round trips, small enough to keep Redis
/// responsive for the servers meanwhile.
const CHUNK: usize = 1_000;

/// How long a pipeline may wait for Redis's answer.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Plan {
    pub count: usize,
    pub contacts: usize,
    pub extras: Extras,
    pub connections: usize,
}

pub async fn seed_sessions(redis_url: &str, plan: &Plan, run: u32) -> Result<SeedReport> {
    let client = redis::Client::open(redis_url).context("REDIS url")?;
    // redis-rs answers "timed out" after 500 ms by default: a pipeline of CHUNK users behind
    // others on a Redis growing past a million keys (a rehash, an allocation) took longer in
    // 3 of 6 seedings one day, failing the whole run. Waiting is right for a seeder.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut cons = Vec::new();
    for _ in 0..plan.connections.max(1) {
        let con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .with_context(|| format!("connecting to {redis_url}"))?;
        cons.push(con);
    }
    let bar = crate::phases::progress(plan.count as u64, "seeding");
    let half = if plan.extras.contacts {
        ring::half(plan.count, plan.contacts)
    } else {
        0
    };
    let started = Instant::now();
    let chunks = plan.count.div_ceil(CHUNK);
    stream::iter(0..chunks)
        .map(|c| {
            let mut con = cons[c % cons.len()].clone();
            let first = c * CHUNK;
            let last = (first + CHUNK).min(plan.count);
            let (n, extras, bar) = (plan.count, plan.extras, bar.clone());
            // A task per chunk, so that every worker thread builds pipelines (the load
            // generator's CPU, not Redis, bounds the rate otherwise).
            let task = tokio::spawn(async move {
                let pipe = chunk_pipeline(run, first..last, n, half, extras);
                pipe.query_async::<()>(&mut con)
                    .await
                    .context("seeding sessions")?;
                bar.inc((last - first) as u64);
                anyhow::Ok(())
            });
            async move { task.await.context("seeding task")? }
        })
        // Two pipelines in flight per connection: one being parsed by Redis while the next
        // is on the wire.
        .buffer_unordered(2 * cons.len())
        .try_collect::<()>()
        .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let report = SeedReport {
        sessions: plan.count,
        contacts_per_user: 2 * half,
        index: plan.extras.index,
        messages: (plan.count * half) as u64,
        connections: cons.len(),
        secs,
        sessions_per_sec: plan.count as f64 / secs.max(1e-9),
    };
    eprintln!(
        "seeded {} sessions in {:.1} s ({:.0}/s over {} connections){}{}",
        report.sessions,
        secs,
        report.sessions_per_sec,
        report.connections,
        if report.index {
            ", with privmsg:user and privmsg:usernames"
        } else {
            ""
        },
        if half > 0 {
            format!(
                ", {} contacts each, {} messages (one per pair)",
                2 * half,
                report.messages
            )
        } else {
            String::new()
        }
    );
    Ok(report)
}

/// One pipeline writing users `range` of `n`.
fn chunk_pipeline(
    run: u32,
    range: std::ops::Range<usize>,
    n: usize,
    half: usize,
    extras: Extras,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let mut members = Vec::new();
    let add = |pipe: &mut redis::Pipeline, args: Vec<String>| {
        let mut cmd = redis::cmd(&args[0]);
        for arg in &args[1..] {
            cmd.arg(arg);
        }
        pipe.add_command(cmd).ignore();
    };
    for i in range {
        let user = Seeded {
            session_id: uuid::Uuid::new_v4().to_string(),
            user_id: layout::user_id(run, i),
            username: layout::username(run, i),
        };
        // The first `half` neighbours come after i on the ring: i sent their pair's message.
        let contacts: Vec<(String, bool)> = ring::neighbours(i, n, half)
            .enumerate()
            .map(|(k, j)| (layout::user_id(run, j), k < half))
            .collect();
        if extras.index {
            members.push(layout::username_member(&user.username, &user.user_id));
        }
        for args in layout::commands(&user, &contacts, extras) {
            add(&mut pipe, args);
        }
    }
    if !members.is_empty() {
        add(&mut pipe, layout::zadd(members));
    }
    pipe
}
