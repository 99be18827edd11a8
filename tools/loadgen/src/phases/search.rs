//! search: `search users` (docs/protocol.md) at `--search-rate` per second for `--search-duration`
//! seconds, spread over the connected users, each query a random prefix (1 to all characters)
//! of a username sampled from Redis (`privmsg:usernames`, else the stored sessions, else the
//! virtual users). Reports latency, results per answer and errors by reason.
//!
//! A server without `search users` never acks (Socket.IO drops an event nobody handles): if no
//! search is answered within `--search-timeout`, the phase stops sending and the run fails,
//! saying so, instead of waiting out the duration.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tokio::{
    task::JoinSet,
    time::{MissedTickBehavior, interval},
};

use super::{Ctx, progress};
use crate::{
    protocol,
    report::{
        counts_line, latency_line,
        scale::{SearchReport, SizeStats},
    },
    seed::USERNAMES_KEY,
    tracker::histogram,
};

const SAMPLE: usize = 1_000;

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let args = ctx.args.clone();
    let searchers: Vec<usize> = ctx.connected().map(|u| u.idx as usize).collect();
    if searchers.is_empty() {
        bail!("the search phase needs a connected user");
    }
    let (names, source) = match sample_usernames(&args.redis_url).await {
        Ok((names, source)) if !names.is_empty() => (names, source),
        outcome => {
            if let Err(e) = outcome {
                eprintln!("search: no usernames from Redis ({e:#}): using the virtual users'");
            }
            let run = ctx.run_id;
            let own = searchers.iter().map(|i| format!("lg{run:08x}-{i}"));
            (own.collect(), "virtual users".to_owned())
        }
    };
    let timeout = Duration::from_secs_f64(args.search_timeout);
    let total = (args.search_rate * args.search_duration).round() as u64;
    let meter = ctx.meter();
    let bar = progress(total, "searches");
    let answered = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut sent, mut unsupported) = (0u64, false);
    'pacing: while sent < total {
        tick.tick().await;
        if start.elapsed() > timeout && answered.load(Relaxed) == 0 {
            unsupported = true;
            break 'pacing;
        }
        let due = ((start.elapsed().as_secs_f64() * args.search_rate) as u64).min(total);
        while sent < due {
            let user = &ctx.users[searchers[sent as usize % searchers.len()]];
            let name = &names[ctx.rng.usize(..names.len())];
            let query = prefix(name, ctx.rng.usize(1..=name.chars().count().max(1)));
            sent += 1;
            let (id, answer) = ctx.hub.requests.open();
            let frame = protocol::search_frame(id, &query, args.search_limit);
            let sent_at = Instant::now();
            if !user.conn.as_ref().is_some_and(|c| c.send(frame)) {
                ctx.hub.requests.forget(id);
                *errors.entry("connection gone".to_owned()).or_default() += 1;
                continue;
            }
            let hub = Arc::clone(&ctx.hub);
            let answered = Arc::clone(&answered);
            set.spawn(async move {
                match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(a)) => {
                        answered.fetch_add(1, Relaxed);
                        let waited = a.at.saturating_duration_since(sent_at);
                        (protocol::search_outcome(&a.payload), Some(waited))
                    }
                    _ => {
                        hub.requests.forget(id);
                        let why = format!("no answer within {} s", timeout.as_secs_f64());
                        (Err(why), None)
                    }
                }
            });
        }
        bar.set_position(sent);
    }
    bar.finish_and_clear();
    // Every task ends within `timeout` of its send: this wait is bounded.
    let mut hist = histogram();
    let mut results = Vec::new();
    while let Some(done) = set.join_next().await {
        let (outcome, waited) = done?;
        if let Some(w) = waited {
            hist.saturating_record((w.as_micros() as u64).max(1));
        }
        match outcome {
            Ok(count) => results.push(count as u64),
            Err(reason) => *errors.entry(reason).or_default() += 1,
        }
    }
    let cpu = meter.stop();
    let ok = results.len() as u64;
    let empty = results.iter().filter(|&&c| c == 0).count() as u64;
    let results = SizeStats::of(results);
    let errored: u64 = errors.values().sum();
    let mut lines = vec![
        format!(
            "offered {:.0}/s for {:.1} s: sent {sent}, {ok} answered {{ users }}, {errored} errors \
             (limit {}, {} usernames sampled from {source})",
            args.search_rate,
            args.search_duration,
            args.search_limit,
            names.len()
        ),
        latency_line("search -> answer", &hist),
        format!("results per answer: {} ({empty} empty)", results.line()),
    ];
    if errored > 0 {
        lines.push(format!("errors: {}", counts_line(&errors)));
        ctx.report.fail(format!(
            "search: {errored} errors: {}",
            counts_line(&errors)
        ));
    }
    if unsupported || (sent > 0 && hist.is_empty()) {
        let why = format!(
            "search: the server answered none of {sent} `search users` within {} s: \
             does it implement `search users` (docs/protocol.md)?",
            timeout.as_secs_f64()
        );
        lines.push(why.clone());
        ctx.report.fail(why);
        ctx.report.broken = true;
    }
    ctx.report.summary("search", &cpu, lines);
    ctx.report.phases.search = Some(SearchReport {
        rate: args.search_rate,
        duration_secs: args.search_duration,
        limit: args.search_limit,
        sampled_usernames: names.len(),
        sample_source: source,
        sent,
        answered: ok,
        results,
        empty_results: empty,
        errors,
        latency: (&hist).into(),
        cpu: (&cpu).into(),
    });
    Ok(())
}

/// The first `chars` characters of `name` (never splitting a character).
pub fn prefix(name: &str, chars: usize) -> String {
    name.chars().take(chars).collect()
}

/// Up to SAMPLE usernames: from the search index when it exists, else from stored sessions.
async fn sample_usernames(redis_url: &str) -> Result<(Vec<String>, String)> {
    let client = redis::Client::open(redis_url).context("REDIS url")?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to {redis_url}"))?;
    let members: Vec<String> = redis::cmd("ZRANDMEMBER")
        .arg(USERNAMES_KEY)
        .arg(SAMPLE)
        .query_async(&mut con)
        .await
        .context("ZRANDMEMBER")?;
    let names: Vec<String> = members
        .iter()
        .filter_map(|m| m.split('\0').next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if !names.is_empty() {
        return Ok((names, USERNAMES_KEY.to_owned()));
    }
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("session:*")
        .arg("COUNT")
        .arg(SAMPLE * 10)
        .query_async(&mut con)
        .await
        .context("SCAN")?;
    let mut pipe = redis::pipe();
    for key in keys.iter().take(SAMPLE) {
        pipe.hget(key, "username");
    }
    let names: Vec<Option<String>> = pipe.query_async(&mut con).await.context("HGET")?;
    Ok((
        names.into_iter().flatten().collect(),
        "session:*".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn prefixes_count_characters_not_bytes() {
        assert_eq!(prefix("Kqzmw42", 3), "Kqz");
        assert_eq!(prefix("éàü", 2), "éà");
        assert_eq!(prefix("ab", 9), "ab");
    }
}
