//! connect: N users join in batches of B (a batch starts when the previous one is done), each
//! timed from opening its socket to receiving `users`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Result;
use tokio::task::JoinSet;

use super::{Ctx, User, progress};
use crate::{
    client,
    protocol::{self, Auth},
    report::{counts_line, json::ConnectReport, latency_line, mib},
    tracker::histogram,
    usage::total_rss_kib,
};

pub async fn run(ctx: &mut Ctx, run_id: u32) -> Result<()> {
    let args = ctx.args.clone();
    let n = args.users;
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    ctx.rss_baseline_kib = total_rss_kib(&args.server_pid);
    let meter = ctx.meter();
    let bar = progress(n as u64, "connecting");
    let mut hist = histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut users: Vec<Option<User>> = (0..n).map(|_| None).collect();
    let mut urls: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        urls.push(args.urls[i % args.urls.len()].clone());
    }

    let started = std::time::Instant::now();
    for first in (0..n).step_by(args.batch.max(1)) {
        if args
            .connect_budget
            .is_some_and(|budget| started.elapsed().as_secs_f64() > budget)
        {
            break; // out of time: the users never started keep `conn: None`
        }
        let mut set = JoinSet::new();
        for (i, url) in urls.iter().enumerate().skip(first).take(args.batch.max(1)) {
            let ws = protocol::ws_url(url);
            let auth = Auth::Username(format!("lg{run_id:08x}-{i}"));
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
        while let Some(done) = set.join_next().await {
            let (i, outcome) = done?;
            let user = match outcome {
                Ok(Ok((joined, conn))) => {
                    hist.saturating_record((joined.elapsed.as_micros() as u64).max(1));
                    User {
                        idx: i as u32,
                        url: urls[i].clone(),
                        session_id: joined.session_id,
                        user_id: joined.user_id,
                        conn: Some(conn),
                    }
                }
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => "timeout".to_owned(),
                    };
                    *errors.entry(reason).or_default() += 1;
                    User {
                        idx: i as u32,
                        url: urls[i].clone(),
                        session_id: String::new(),
                        user_id: String::new(),
                        conn: None,
                    }
                }
            };
            users[i] = Some(user);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let attempted = users.iter().flatten().count();
    // Users never attempted (budget) keep their index, without a connection.
    ctx.users = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            u.unwrap_or_else(|| User {
                idx: i as u32,
                url: urls[i].clone(),
                session_id: String::new(),
                user_id: String::new(),
                conn: None,
            })
        })
        .collect();
    let cpu = meter.stop();

    let connected = hist.len();
    let failed: u64 = errors.values().sum();
    let rss_kib = total_rss_kib(&args.server_pid);
    let per_conn_kib = match connected {
        0 => 0.0,
        c => rss_kib.saturating_sub(ctx.rss_baseline_kib) as f64 / c as f64,
    };
    let mut lines = vec![
        format!(
            "{connected}/{n} connected ({attempted} tried) in batches of {}, {failed} failed ({:.0} joins/s)",
            args.batch,
            connected as f64 / cpu.wall
        ),
        latency_line("connect -> users", &hist),
    ];
    if failed > 0 {
        lines.push(format!("failures: {}", counts_line(&errors)));
        ctx.report.fail(format!(
            "{failed} connections failed: {}",
            counts_line(&errors)
        ));
    }
    if !args.server_pid.is_empty() {
        lines.push(format!(
            "server RSS {:.1} MiB (was {:.1} MiB): {per_conn_kib:.1} KiB per connection",
            mib(rss_kib),
            mib(ctx.rss_baseline_kib)
        ));
    }
    ctx.report.summary("connect", &cpu, lines);
    ctx.report.phases.connect = Some(ConnectReport {
        users: n,
        batch: args.batch,
        seeded_sessions: args.seed_sessions,
        attempted,
        connected,
        failed,
        errors,
        latency: (&hist).into(),
        server_rss_before_kib: ctx.rss_baseline_kib,
        server_rss_after_kib: rss_kib,
        server_rss_per_conn_kib: per_conn_kib,
        cpu: (&cpu).into(),
    });
    Ok(())
}
