//! message: private messages from a random connected user to another, at `--rate` per second
//! in total for `--duration` seconds, each with an ack callback (none with `--no-acks`, for a
//! server that sends none). Then a grace period lets the last acks and deliveries arrive before
//! losses are counted.
//!
//! One pacer task sends for everyone: each millisecond it sends what the schedule says is due
//! by now, so a slow tick catches up instead of silently lowering the rate (and the achieved
//! rate is reported next to the target).

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use tokio::time::{MissedTickBehavior, interval, sleep};

use super::{Ctx, progress};
use crate::{
    api::{self, ApiSender},
    protocol,
    report::{counts_line, json::MessageReport, latency_line},
    tracker::{ACK_ERROR, ACK_OK, ACK_PENDING},
};

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let args = ctx.args.clone();
    let senders: Vec<usize> = ctx.connected().map(|u| u.idx as usize).collect();
    if senders.len() < 2 {
        bail!("the message phase needs at least 2 connected users");
    }
    let tracker = &ctx.hub.tracker;
    let total = (args.rate * args.duration).round() as u64;
    let pad = "x".repeat(args.size);
    let meter = ctx.meter();
    let bar = progress(total, "messages");
    let start_us = tracker.now_us();
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut sent, mut send_failed) = (0u64, 0u64);
    let api = args.api_key.as_deref().map(ApiSender::new).transpose()?;
    let n = senders.len();
    'pacing: while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64).min(total);
        while sent < due {
            let a = ctx.rng.usize(..n);
            let mut b = ctx.rng.usize(..n - 1);
            if b >= a {
                b += 1;
            }
            let (from, to) = (&ctx.users[senders[a]], &ctx.users[senders[b]]);
            let Some((seq, content)) = tracker.claim(from.idx, to.idx, &pad) else {
                break 'pacing;
            };
            if let Some(api) = &api {
                let body = api::body(&from.user_id, &to.user_id, &content);
                api.send(&ctx.hub, &from.url, seq, body).await;
                sent += 1;
                continue;
            }
            // The seq is also the ack id: the ack finds its slot directly.
            let ack = (!args.no_acks).then_some(seq);
            let frame = protocol::private_message_frame(ack, &content, &to.user_id);
            let queued = from.conn.as_ref().is_some_and(|c| c.send(frame));
            if !queued {
                send_failed += 1;
            }
            sent += 1;
        }
        if sent % 1024 < 64 {
            bar.set_position(sent);
        }
    }
    let send_window = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    // Grace: wait for every ack and every acknowledged message's delivery (without acks: every
    // message's delivery), or the deadline.
    let queued = sent - send_failed;
    let deadline = Instant::now() + Duration::from_secs_f64(args.grace);
    while Instant::now() < deadline {
        let acks = tracker.acks.load(Relaxed);
        let delivered = tracker.delivered_unique.load(Relaxed);
        let done = if args.no_acks {
            delivered >= queued
        } else {
            acks >= queued && delivered >= tracker.acked_ok.load(Relaxed)
        };
        if done {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let cpu = meter.stop();

    let (mut lost, mut unacked, mut delivered_after_error) = (0u64, 0u64, 0u64);
    for slot in tracker.slots() {
        let delivered = slot.deliveries.load(Relaxed) > 0;
        match slot.ack.load(Relaxed) {
            // Without acks there is nothing to wait for: whatever was not delivered is lost.
            ACK_PENDING if args.no_acks => lost += u64::from(!delivered),
            ACK_OK if !delivered => lost += 1,
            ACK_ERROR if delivered => delivered_after_error += 1,
            ACK_PENDING => unacked += 1,
            _ => {}
        }
    }
    let acked_ok = tracker.acked_ok.load(Relaxed);
    let delivered = tracker.delivered_unique.load(Relaxed);
    let duplicates = tracker.duplicates.load(Relaxed);
    let misrouted = tracker.misrouted.load(Relaxed);
    let malformed = tracker.malformed.load(Relaxed);
    let errors: BTreeMap<String, u64> =
        tracker.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let errored: u64 = errors.values().sum();
    let delivery_span = (tracker
        .last_delivery_us
        .load(Relaxed)
        .saturating_sub(start_us) as f64
        / 1e6)
        .max(send_window);
    let delivered_per_sec = delivered as f64 / delivery_span.max(1e-9);
    let latency = tracker
        .latency_us
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| crate::tracker::histogram());
    let ack_latency = tracker
        .ack_latency_us
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| crate::tracker::histogram());

    let servers_ms = per_1000(cpu.server_cpu_secs(), delivered);
    let redis_ms = cpu
        .redis_cpu_secs()
        .and_then(|secs| per_1000(Some(secs), delivered));
    let acks = if args.no_acks {
        "no acks asked (--no-acks)".to_owned()
    } else {
        format!("acked {acked_ok}, errors {errored}, unacked {unacked}")
    };
    let mut lines = vec![
        format!(
            "offered {:.0}/s for {:.1} s: sent {sent} ({:.0}/s), {acks}",
            args.rate,
            args.duration,
            sent as f64 / send_window.max(1e-9)
        ),
        format!(
            "delivered {delivered} ({delivered_per_sec:.0}/s), lost {lost}, duplicated {duplicates}, misrouted {misrouted}"
        ),
        latency_line("end-to-end", &latency),
        latency_line("ack", &ack_latency),
    ];
    let other = ctx.hub.other_events.load(Relaxed);
    if other > 0 {
        lines.push(format!(
            "other events received (e.g. a backend's emits): {other}"
        ));
    }
    if api.is_some() {
        let copies = tracker.sender_copies.load(Relaxed);
        lines.push(format!(
            "sent through POST /api/messages; copies to the senders' own sockets {copies}"
        ));
    }
    if let Some(ms) = servers_ms {
        let redis = redis_ms.map_or(String::new(), |r| format!(", redis {r:.1}"));
        lines.push(format!(
            "cpu per 1,000 delivered (core-ms): servers {ms:.1} ({} processes summed){redis}",
            cpu.servers.len()
        ));
    }
    if errored > 0 {
        lines.push(format!("error acks: {}", counts_line(&errors)));
    }
    for (what, count) in [
        (
            if args.no_acks {
                "lost (sent, never delivered within the grace period)"
            } else {
                "lost (acknowledged, never delivered within the grace period)"
            },
            lost,
        ),
        ("duplicated", duplicates),
        (
            "misrouted (delivered to a user who was not the recipient)",
            misrouted,
        ),
        ("unacknowledged within the grace period", unacked),
        (
            "delivered although refused with an error ack",
            delivered_after_error,
        ),
        ("not sent: connection already gone", send_failed),
        ("malformed acks or deliveries", malformed),
    ] {
        if count > 0 {
            ctx.report.fail(format!("{count} messages {what}"));
        }
    }
    ctx.report.summary("message", &cpu, lines);
    ctx.report.phases.message = Some(MessageReport {
        rate: args.rate,
        duration_secs: args.duration,
        users: n,
        content_pad_bytes: args.size,
        sent,
        sent_per_sec: sent as f64 / send_window.max(1e-9),
        acked_ok,
        error_acks: errors,
        unacked,
        delivered,
        delivered_per_sec,
        lost,
        duplicates,
        misrouted,
        delivered_after_error,
        send_failed,
        malformed,
        other_events: other,
        latency: (&latency).into(),
        ack_latency: (&ack_latency).into(),
        cpu: (&cpu).into(),
        no_acks: args.no_acks,
        server_cpu_ms_per_1000_delivered: servers_ms,
        redis_cpu_ms_per_1000_delivered: redis_ms,
    });
    Ok(())
}

/// CPU-seconds per 1,000 messages, in core-milliseconds; None without a reading or a message.
fn per_1000(cpu_secs: Option<f64>, messages: u64) -> Option<f64> {
    let secs = cpu_secs?;
    (messages > 0).then(|| secs * 1e3 / messages as f64 * 1e3)
}

#[cfg(test)]
mod tests {
    use super::per_1000;

    #[test]
    fn cpu_per_1000_messages_is_in_core_milliseconds() {
        // 0.5 core-second for 2,000 messages: 250 core-ms per 1,000.
        assert_eq!(per_1000(Some(0.5), 2000), Some(250.0));
        assert_eq!(per_1000(Some(0.5), 0), None);
        assert_eq!(per_1000(None, 2000), None);
    }
}
