//! connect: N users join in batches of B (a batch starts when the previous one is done), each
//! timed from opening its socket to receiving `users`. rejoin: every connected user closes its
//! socket and reconnects by sessionID, in the same batches (after `--contacts`, this times
//! users who have contacts). Both report the size of the `users` events and the time for all
//! batches.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Result;
use tokio::task::JoinSet;

use super::{Ctx, User, progress};
use crate::{
    client,
    protocol::{self, Auth},
    report::{
        counts_line,
        json::ConnectReport,
        latency_line, mib,
        scale::{SizeStats, UsersEvent},
    },
    tracker::histogram,
    usage::total_rss_kib,
};

/// Fresh users (`{ username }`), or the connected ones again (`{ sessionID }`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Connect,
    Rejoin,
}

pub async fn run(ctx: &mut Ctx, mode: Mode) -> Result<()> {
    let args = ctx.args.clone();
    let run_id = ctx.run_id;
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let who: Vec<usize> = match mode {
        Mode::Connect => {
            ctx.rss_baseline_kib = total_rss_kib(&args.server_pid);
            ctx.users = (0..args.users)
                .map(|i| User {
                    idx: i as u32,
                    url: args.urls[i % args.urls.len()].clone(),
                    session_id: String::new(),
                    user_id: String::new(),
                    conn: None,
                })
                .collect();
            (0..args.users).collect()
        }
        Mode::Rejoin => ctx.connected().map(|u| u.idx as usize).collect(),
    };
    let n = who.len();
    let rss_before = total_rss_kib(&args.server_pid);
    let meter = ctx.meter();
    let what = if mode == Mode::Connect {
        "connecting"
    } else {
        "rejoining"
    };
    let bar = progress(n as u64, what);
    let mut hist = histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut entries, mut bytes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut attempted = 0;

    let started = std::time::Instant::now();
    for batch in who.chunks(args.batch.max(1)) {
        if args
            .connect_budget
            .is_some_and(|budget| started.elapsed().as_secs_f64() > budget)
        {
            break; // out of time: the users never started keep `conn: None`
        }
        let mut set = JoinSet::new();
        for &i in batch {
            let user = &mut ctx.users[i];
            let auth = match mode {
                Mode::Connect => Auth::Username(format!("lg{run_id:08x}-{i}")),
                Mode::Rejoin => {
                    // Closed first, as a reloading tab does.
                    user.conn = None;
                    Auth::Session(user.session_id.clone())
                }
            };
            let ws = protocol::ws_url(&user.url);
            let hub = Arc::clone(&ctx.hub);
            set.spawn(async move {
                let joined = tokio::time::timeout(
                    timeout,
                    client::connect(&ws, &auth, i as u32, false, hub),
                )
                .await;
                (i, joined)
            });
        }
        attempted += batch.len();
        while let Some(done) = set.join_next().await {
            let (i, outcome) = done?;
            match outcome {
                Ok(Ok((joined, conn))) => {
                    hist.saturating_record((joined.elapsed.as_micros() as u64).max(1));
                    entries.push(joined.users_entries as u64);
                    bytes.push(joined.users_bytes as u64);
                    let user = &mut ctx.users[i];
                    if mode == Mode::Rejoin && joined.user_id != user.user_id {
                        *errors.entry("rejoined as another user".into()).or_default() += 1;
                    }
                    user.session_id = joined.session_id;
                    user.user_id = joined.user_id;
                    user.conn = Some(conn);
                }
                Ok(Err(e)) => *errors.entry(format!("{e:#}")).or_default() += 1,
                Err(_) => *errors.entry("timeout".to_owned()).or_default() += 1,
            }
            bar.inc(1);
        }
    }
    let join_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let cpu = meter.stop();

    let connected = hist.len();
    let failed: u64 = errors.values().sum();
    let rss_kib = total_rss_kib(&args.server_pid);
    let baseline = if mode == Mode::Connect {
        ctx.rss_baseline_kib
    } else {
        rss_before
    };
    let per_conn_kib = match connected {
        0 => 0.0,
        c => rss_kib.saturating_sub(baseline) as f64 / c as f64,
    };
    let users_event = UsersEvent {
        entries: SizeStats::of(entries),
        bytes: SizeStats::of(bytes),
    };
    let name = if mode == Mode::Connect {
        "connect"
    } else {
        "rejoin"
    };
    let mut lines = vec![
        format!(
            "{connected}/{n} joined ({attempted} tried) in batches of {} in {join_secs:.2} s, \
             {failed} failed ({:.0} joins/s)",
            args.batch,
            connected as f64 / join_secs.max(1e-9)
        ),
        latency_line(&format!("{name} -> users"), &hist),
        format!("users entries: {}", users_event.entries.line()),
        format!("users bytes:   {}", users_event.bytes.line()),
    ];
    if failed > 0 {
        lines.push(format!("failures: {}", counts_line(&errors)));
        ctx.report
            .fail(format!("{failed} {name}s failed: {}", counts_line(&errors)));
    }
    if !args.server_pid.is_empty() {
        lines.push(format!(
            "server RSS {:.1} MiB (was {:.1} MiB): {per_conn_kib:.1} KiB per connection",
            mib(rss_kib),
            mib(baseline)
        ));
    }
    ctx.report.summary(name, &cpu, lines);
    let report = ConnectReport {
        users: n,
        batch: args.batch,
        seeded_sessions: args.seed_sessions,
        attempted,
        connected,
        failed,
        errors,
        latency: (&hist).into(),
        join_secs,
        users_event,
        server_rss_before_kib: baseline,
        server_rss_after_kib: rss_kib,
        server_rss_per_conn_kib: per_conn_kib,
        cpu: (&cpu).into(),
    };
    match mode {
        Mode::Connect => ctx.report.phases.connect = Some(report),
        Mode::Rejoin => ctx.report.phases.rejoin = Some(report),
    }
    Ok(())
}
