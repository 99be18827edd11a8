//! restore: a sample of users close their socket and reconnect with `{ sessionID }`. Each must
//! get back the same sessionID and userID, and its `users` must hold every message it exchanged
//! that was acknowledged (`{ message }`; with `--no-acks`, delivered), filed under the right
//! peer, each once. A history longer than `--history-cap` is legitimately trimmed: then the
//! newest `cap` must be there.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use anyhow::Result;
use serde_json::Value;

use super::{Ctx, progress};
use crate::{
    client,
    protocol::{self, Auth},
    report::{
        json::{RestoreReport, RestoreTally as Tally},
        latency_line,
    },
    tracker::{ACK_OK, ACK_PENDING, histogram},
};

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let args = ctx.args.clone();
    let mut sample: Vec<usize> = ctx.connected().map(|u| u.idx as usize).collect();
    ctx.rng.shuffle(&mut sample);
    sample.truncate(args.restore_sample);
    let meter = ctx.meter();
    let bar = progress(sample.len() as u64, "restoring");
    let mut hist = histogram();
    let mut tally = Tally::default();
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    for &i in &sample {
        // Close the old socket first, as a reloading tab does.
        ctx.users[i].conn = None;
        let auth = Auth::Session(ctx.users[i].session_id.clone());
        let url = protocol::ws_url(&ctx.users[i].url);
        let hub = Arc::clone(&ctx.hub);
        let joined =
            tokio::time::timeout(timeout, client::connect(&url, &auth, i as u32, true, hub));
        let Ok(Ok((joined, conn))) = joined.await else {
            tally.failed_connect += 1;
            bar.inc(1);
            continue;
        };
        hist.saturating_record((joined.elapsed.as_micros() as u64).max(1));
        let user = &ctx.users[i];
        if joined.user_id != user.user_id || joined.session_id != user.session_id {
            tally.wrong_identity += 1;
        } else if check_history(ctx, i, joined.users_frame.as_deref(), &mut tally) {
            tally.ok += 1;
        }
        ctx.users[i].conn = Some(conn);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let cpu = meter.stop();

    let checked = sample.len() as u64;
    let mut lines = vec![
        format!(
            "{}/{checked} restored with the same userID and a complete history",
            tally.ok
        ),
        latency_line("reconnect -> users", &hist),
    ];
    if tally.capped > 0 {
        lines.push(format!(
            "{} histories above --history-cap {} (checked: the newest are there)",
            tally.capped, args.history_cap
        ));
    }
    if tally.ok < checked {
        let what = format!(
            "restore: {} connect failures, {} wrong identity, {} without their own entry, \
             {} incomplete histories ({} messages missing), {} under the wrong peer, \
             {} stored although refused with an error ack, {} duplicated in history",
            tally.failed_connect,
            tally.wrong_identity,
            tally.self_missing,
            tally.incomplete,
            tally.missing_messages,
            tally.misfiled,
            tally.stored_despite_error,
            tally.history_duplicates
        );
        lines.push(what.clone());
        ctx.report.fail(what);
    }
    ctx.report.summary("restore", &cpu, lines);
    ctx.report.phases.restore = Some(RestoreReport {
        sample: checked,
        tally,
        latency: (&hist).into(),
        cpu: (&cpu).into(),
    });
    Ok(())
}

/// True when user `me`'s `users` frame holds what it should.
fn check_history(ctx: &Ctx, me: usize, frame: Option<&str>, tally: &mut Tally) -> bool {
    let tracker = &ctx.hub.tracker;
    let me_u32 = me as u32;
    // What the user exchanged: acknowledged (must be there) or unanswered (may be there).
    let mut expected: HashSet<usize> = HashSet::new();
    let mut maybe: HashSet<usize> = HashSet::new();
    for (seq, slot) in tracker.slots().iter().enumerate() {
        let (from, to) = (slot.from.load(Relaxed), slot.to.load(Relaxed));
        if from != me_u32 && to != me_u32 {
            continue;
        }
        match slot.ack.load(Relaxed) {
            ACK_OK => expected.insert(seq),
            // Without acks (--no-acks), a delivered message is known to have been accepted.
            ACK_PENDING if ctx.args.no_acks && slot.deliveries.load(Relaxed) > 0 => {
                expected.insert(seq)
            }
            ACK_PENDING => maybe.insert(seq),
            _ => false,
        };
    }
    let entries = frame
        .and_then(protocol::event_args)
        .and_then(|v| v.get(1).and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let own_id = &ctx.users[me].user_id;
    let self_listed = entries.iter().any(|e| e["userID"].as_str() == Some(own_id));
    let refused_before = tally.stored_despite_error;
    let mut found: HashMap<usize, u32> = HashMap::new();
    let mut misfiled = 0;
    for entry in &entries {
        let peer_id = entry["userID"].as_str().unwrap_or("");
        for message in entry["messages"].as_array().into_iter().flatten() {
            let Some(seq) = message["content"].as_str().and_then(|c| tracker.seq_of(c)) else {
                continue;
            };
            let Some(slot) = tracker.slots().get(seq) else {
                misfiled += 1;
                continue;
            };
            let (from, to) = (slot.from.load(Relaxed), slot.to.load(Relaxed));
            let peer = if from == me_u32 { to } else { from };
            let peer_ok = ctx
                .users
                .get(peer as usize)
                .is_some_and(|p| p.user_id == peer_id);
            if !(expected.contains(&seq) || maybe.contains(&seq)) {
                // Its ack said `{ error }`: docs/protocol.md says it was then never stored.
                tally.stored_despite_error += 1;
            } else if !peer_ok {
                misfiled += 1;
            }
            *found.entry(seq).or_default() += 1;
        }
    }
    let duplicates: u64 = found
        .values()
        .map(|&c| u64::from(c.saturating_sub(1)))
        .sum();
    let missing = expected.iter().filter(|s| !found.contains_key(s)).count() as u64;
    let cap = ctx.args.history_cap;
    let capped = expected.len() + maybe.len() > cap;
    // Above the cap the server keeps the newest `cap`: the list must then be full.
    let complete = if capped {
        found.len() >= cap.min(expected.len())
    } else {
        missing == 0
    };
    tally.capped += u64::from(capped);
    tally.misfiled += misfiled;
    tally.history_duplicates += duplicates;
    tally.self_missing += u64::from(!self_listed);
    if !complete {
        tally.incomplete += 1;
        tally.missing_messages += missing;
    }
    let refused_but_stored = tally.stored_despite_error > refused_before;
    complete && misfiled == 0 && duplicates == 0 && self_listed && !refused_but_stored
}
