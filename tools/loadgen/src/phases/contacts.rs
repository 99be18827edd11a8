//! `--contacts K`: before the phases, each connected virtual user gets K contacts among the
//! others (ring neighbours, `ring.rs`) by one `private message` per pair, sent with an ack:
//! docs/protocol.md makes two users contacts at their first message. Virtual users only learn their
//! userIDs when they connect, so messages (not seeding) are how they get contacts. A window
//! bounds the messages in flight, below the server's MAX_PENDING_MESSAGES (2,048).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Result;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{Ctx, progress};
use crate::{
    protocol,
    report::{counts_line, scale::ContactsReport},
    ring,
};

const IN_FLIGHT: usize = 256;

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let per_user = ctx.args.contacts;
    let timeout = Duration::from_secs_f64(ctx.args.connect_timeout);
    let connected: Vec<usize> = ctx.connected().map(|u| u.idx as usize).collect();
    let n = connected.len();
    let half = ring::half(n, per_user);
    let meter = ctx.meter();
    let bar = progress((n * half) as u64, "contacts");
    let window = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (a, b) in ring::pairs(n, half) {
        let (from, to) = (&ctx.users[connected[a]], &ctx.users[connected[b]]);
        let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
            break;
        };
        let (id, answer) = ctx.hub.requests.open();
        let frame = protocol::private_message_frame(Some(id), "contact", &to.user_id);
        if !from.conn.as_ref().is_some_and(|c| c.send(frame)) {
            ctx.hub.requests.forget(id);
            *errors.entry("connection gone".to_owned()).or_default() += 1;
            continue;
        }
        let hub = Arc::clone(&ctx.hub);
        let bar = bar.clone();
        set.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(a)) => protocol::message_outcome(&a.payload),
                _ => {
                    hub.requests.forget(id);
                    Err(format!("no ack within {} s", timeout.as_secs_f64()))
                }
            };
            drop(permit);
            bar.inc(1);
            outcome
        });
    }
    let mut acked_ok = 0;
    while let Some(done) = set.join_next().await {
        match done? {
            Ok(()) => acked_ok += 1,
            Err(reason) => *errors.entry(reason).or_default() += 1,
        }
    }
    bar.finish_and_clear();
    let cpu = meter.stop();
    let pairs = (n * half) as u64;
    let not_acked: u64 = errors.values().sum();
    let mut lines = vec![format!(
        "{} contacts each among {n} users: {pairs} pairs, one message each, {acked_ok} acknowledged",
        2 * half
    )];
    if 2 * half < per_user {
        lines.push(format!(
            "(asked for {per_user}: rounded down to even and below the user count)"
        ));
    }
    if not_acked > 0 {
        lines.push(format!("not acknowledged: {}", counts_line(&errors)));
        ctx.report.fail(format!(
            "contacts: {not_acked} messages not acknowledged: {}",
            counts_line(&errors)
        ));
    }
    ctx.report.summary("contacts", &cpu, lines);
    ctx.report.phases.contacts = Some(ContactsReport {
        per_user: 2 * half,
        pairs,
        acked_ok,
        not_acked,
        errors,
        secs: cpu.wall,
    });
    Ok(())
}
