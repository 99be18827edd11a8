//! hold: the connected users stay idle (answering pings) for `--hold` seconds; then the
//! servers' RSS growth since before the connect phase (the baseline, measured before the first
//! socket opened) is divided by the connections still open: the figure is per connection.

use std::{sync::atomic::Ordering::Relaxed, time::Duration};

use anyhow::Result;

use super::{Ctx, progress};
use crate::{
    report::{
        json::{HoldReport, PidRss},
        mib,
    },
    usage::rss_kib,
};

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let args = ctx.args.clone();
    let meter = ctx.meter();
    let dropped_before = ctx.hub.dropped.load(Relaxed);
    let secs = args.hold.max(0.0).ceil() as u64;
    let bar = progress(secs, "holding (s)");
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let cpu = meter.stop();

    let dropped = ctx.hub.dropped.load(Relaxed) - dropped_before;
    let open = (ctx.connected().count() as u64).saturating_sub(ctx.hub.dropped.load(Relaxed));
    let per_server: Vec<PidRss> = args
        .server_pid
        .iter()
        .map(|&pid| PidRss {
            pid,
            rss_kib: rss_kib(pid).unwrap_or(0),
        })
        .collect();
    let total: u64 = per_server.iter().map(|p| p.rss_kib).sum();
    let growth = total.saturating_sub(ctx.rss_baseline_kib);
    let per_conn_kib = if open > 0 {
        growth as f64 / open as f64
    } else {
        0.0
    };
    let mut lines = vec![format!(
        "{open} connections held for {secs} s ({dropped} dropped meanwhile; open-file limit {})",
        ctx.fd_limit
    )];
    if !per_server.is_empty() {
        lines.push(format!(
            "server RSS {:.1} MiB, was {:.1} MiB before connecting: +{:.1} MiB, {per_conn_kib:.2} KiB per connection",
            mib(total),
            mib(ctx.rss_baseline_kib),
            mib(growth)
        ));
    }
    if dropped > 0 {
        ctx.report
            .fail(format!("{dropped} idle connections dropped while held"));
    }
    ctx.report.summary("hold", &cpu, lines);
    ctx.report.phases.hold = Some(HoldReport {
        held_secs: secs,
        fd_limit: ctx.fd_limit,
        open,
        dropped,
        server_rss_before_kib: ctx.rss_baseline_kib,
        server_rss_after_kib: total,
        server_rss_kib: per_server,
        server_rss_per_conn_kib: per_conn_kib,
        cpu: (&cpu).into(),
    });
    Ok(())
}
