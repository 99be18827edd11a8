//! `loadgen`: a load generator for any server speaking the private-messaging Socket.IO protocol
//! (docs/protocol.md), over WebSocket. Flags and orchestration only; the socket is in `client.rs`,
//! the phases in `phases/`, the bookkeeping in `tracker.rs` and the output in `report.rs`.

mod api;
mod client;
mod phases;
mod protocol;
mod report;
mod requests;
mod ring;
mod seed;
mod tracker;
mod usage;

use std::{process::ExitCode, sync::Arc};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::{client::Hub, phases::Ctx, report::Report, tracker::Tracker};

/// Load generator for the private-messaging Socket.IO server (Socket.IO v5 over WebSocket).
///
/// Every run first connects --users virtual users (spread round-robin over the --url nodes, in
/// batches of --batch, timed from opening the socket to receiving `users`), then runs the
/// phases asked for, in this order:
///
///   message  random sender -> random other user at --rate msg/s for --duration s, with acks
///            (unless --no-acks); end-to-end latency, delivered/s, lost, duplicated, error acks
///            by reason, server and Redis CPU per 1,000 delivered (--server-pid, --redis-pid)
///   rejoin   every connected user reconnects by sessionID, in batches of --batch: connect
///            latency and `users` size of users who have contacts (after --contacts)
///   restore  --restore-sample users reconnect by sessionID: same userID, full history
///   search   `search users` with random prefixes of stored usernames at --search-rate/s for
///            --search-duration s: latency, results, errors by reason (fails at once if the
///            server answers none within --search-timeout)
///   hold     the users stay idle for --hold s; server RSS per connection (--server-pid),
///            growth over the RSS measured before the first socket opened
///
/// Before connecting, --seed-sessions N stored users are written into Redis (--seed-index,
/// --seed-contacts K: the contacts-scope layout); --seed-only stops there. After connecting,
/// --contacts K gives each virtual user K contacts (one acknowledged message per pair).
///
/// Examples:
///   loadgen --url http://127.0.0.1:3001 --url http://127.0.0.1:3002 --users 200 \
///           --phase message --rate 5000 --duration 10 --server-pid 123 --server-pid 124
///   loadgen --url http://127.0.0.1:3001 --users 100 --batch 10 --seed-sessions 10000
///   loadgen --seed-only --seed-sessions 1000000 --seed-index --redis-url redis://127.0.0.1:6390
///   loadgen --url http://127.0.0.1:3001 --users 100 --contacts 50 --phase rejoin
///   loadgen --url http://127.0.0.1:3001 --users 10 --phase search --search-rate 200
///   loadgen --url http://127.0.0.1:3001 --smoke        # CI: 20 users, 3 s, --assert-no-loss
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", verbatim_doc_comment)]
pub struct Args {
    /// Server node base URL (repeat for several nodes; users are spread round-robin).
    #[arg(long = "url", default_value = "http://127.0.0.1:3000")]
    pub urls: Vec<String>,
    /// Virtual users (one WebSocket each).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Users joining at once; the next batch starts when this one has its `users`.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Phases to run after connecting (repeatable).
    #[arg(long = "phase", value_enum)]
    pub phases: Vec<Phase>,
    /// message: total messages per second offered.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// message: seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// message: seconds to wait after sending for the last acks and deliveries.
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
    /// message: send without ack ids, for a server that does not acknowledge (the Node.js
    /// reference); lost then means sent but not delivered within --grace.
    #[arg(long)]
    pub no_acks: bool,
    /// message: send each message through the server API (`POST /api/messages` on the
    /// sender's node, with this key) instead of the sender's socket; the HTTP answer is the ack.
    #[arg(long, env = "LOADGEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// message: extra bytes of `content` per message (beyond the ~30-byte id and timestamp).
    #[arg(long, default_value_t = 0)]
    pub size: usize,
    /// restore: users to reconnect by sessionID.
    #[arg(long, default_value_t = 10)]
    pub restore_sample: usize,
    /// restore: the server's per-user history cap (HISTORY_CAP), above which trimming is fine.
    #[arg(long, default_value_t = 1000)]
    pub history_cap: usize,
    /// hold: seconds to keep the connections idle.
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
    /// Server process ids (repeatable): their RSS and CPU are reported.
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// Redis process id: its CPU is reported.
    #[arg(long)]
    pub redis_pid: Option<u32>,
    /// Stored sessions to write into Redis (--redis-url) before connecting.
    #[arg(long, default_value_t = 0)]
    pub seed_sessions: usize,
    /// Also write each seeded user's `privmsg:user:<id>` and `privmsg:usernames` member (the
    /// contacts scope's index, as the server writes it).
    #[arg(long)]
    pub seed_index: bool,
    /// Contacts per seeded user among the seeded users (ring neighbours; rounded down to even):
    /// `privmsg:contacts:<id>` sets and one message per pair in both histories. Implies
    /// --seed-index.
    #[arg(long, default_value_t = 0)]
    pub seed_contacts: usize,
    /// Redis connections seeding concurrently.
    #[arg(long, default_value_t = 4)]
    pub seed_connections: usize,
    /// Seed, report and exit (no server needed): lets a script seed before starting servers.
    #[arg(long)]
    pub seed_only: bool,
    /// Redis for --seed-sessions and for sampling usernames (search).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Contacts per virtual user among the virtual users (ring neighbours; rounded down to
    /// even), made after connecting by one acknowledged `private message` per pair.
    #[arg(long, default_value_t = 0)]
    pub contacts: usize,
    /// search: `search users` per second offered, in total.
    #[arg(long, default_value_t = 100.0)]
    pub search_rate: f64,
    /// search: seconds of searching.
    #[arg(long, default_value_t = 10.0)]
    pub search_duration: f64,
    /// search: the `limit` of each search (docs/protocol.md: 1..=50).
    #[arg(long, default_value_t = 20)]
    pub search_limit: usize,
    /// search: seconds to wait for an answer; with no answer at all by then, the phase stops.
    #[arg(long, default_value_t = 5.0)]
    pub search_timeout: f64,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Stop starting new batches after this many seconds of connecting (then go on with
    /// whoever is connected): bounds a "hold as many as fit" run.
    #[arg(long)]
    pub connect_budget: Option<f64>,
    /// Seconds allowed for one connection to get its `users`.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,
    /// Random seed (pairs, restore sample); random when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the report as JSON on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Exit 1 if any message was lost, duplicated, misrouted or left unacknowledged, or a
    /// connection or restore check failed.
    #[arg(long)]
    pub assert_no_loss: bool,
    /// CI preset: 20 users, batch 10, message 100/s for 3 s, restore 5, --assert-no-loss.
    #[arg(long)]
    pub smoke: bool,
    /// Free text copied into the JSON report (scenario name).
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Message,
    Rejoin,
    Restore,
    Search,
    Hold,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.smoke {
        args.users = 20;
        args.batch = 10;
        args.phases = vec![Phase::Message, Phase::Restore];
        args.rate = 100.0;
        args.duration = 3.0;
        args.grace = 5.0;
        args.restore_sample = 5;
        args.assert_no_loss = true;
    }
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let fds = usage::raise_fd_limit();
    if !args.seed_only && (fds as usize) < args.users + 64 {
        eprintln!(
            "WARNING: open-file limit {fds} is below --users {}",
            args.users
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(phases_in_order(args.clone(), fds))?;
    let human = report.human();
    if args.json {
        eprintln!("{human}");
        println!("{}", serde_json::to_string_pretty(&report.json(&args))?);
    } else {
        println!("{human}");
    }
    // Do not wait for thousands of sockets to close politely.
    runtime.shutdown_background();
    let failed = report.broken || (args.assert_no_loss && !report.failures.is_empty());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What `--seed-*` asks for: contacts need the index (a contacts-scope server finds a contact's
/// session through `privmsg:user:<id>`).
fn seed_plan(args: &Args) -> seed::Plan {
    seed::Plan {
        count: args.seed_sessions,
        contacts: args.seed_contacts,
        extras: seed::Extras {
            index: args.seed_index || args.seed_contacts > 0,
            contacts: args.seed_contacts > 0,
        },
        connections: args.seed_connections,
    }
}

async fn phases_in_order(args: Args, fd_limit: u64) -> Result<Report> {
    let run_id = fastrand::u32(..);
    let capacity = if args.phases.contains(&Phase::Message) {
        // Room for the whole schedule plus rounding; the pacer stops at the end anyway.
        (args.rate * args.duration).ceil() as usize + 16
    } else {
        0
    };
    let mut seeded = None;
    if args.seed_sessions > 0 {
        let plan = seed_plan(&args);
        seeded = Some(seed::seed_sessions(&args.redis_url, &plan, run_id).await?);
    }
    let rng = args
        .seed
        .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
    let mut ctx = Ctx {
        hub: Arc::new(Hub::new(if args.api_key.is_some() {
            Tracker::new(capacity, run_id).senders_hear()
        } else {
            Tracker::new(capacity, run_id)
        })),
        args: args.clone(),
        users: Vec::new(),
        report: Report::default(),
        rss_baseline_kib: 0,
        rng,
        run_id,
        fd_limit,
    };
    if let Some(seeded) = seeded {
        let cpu = ctx.meter().stop();
        let line = format!(
            "{} sessions in {:.1} s ({:.0}/s, {} connections), index {}, {} contacts each, {} messages",
            seeded.sessions,
            seeded.secs,
            seeded.sessions_per_sec,
            seeded.connections,
            if seeded.index { "yes" } else { "no" },
            seeded.contacts_per_user,
            seeded.messages
        );
        ctx.report.summary("seed", &cpu, vec![line]);
        ctx.report.phases.seed = Some(seeded);
    }
    if args.seed_only {
        return Ok(ctx.report);
    }
    phases::connect::run(&mut ctx, phases::connect::Mode::Connect).await?;
    if args.contacts > 0 {
        phases::contacts::run(&mut ctx).await?;
    }
    for phase in [
        Phase::Message,
        Phase::Rejoin,
        Phase::Restore,
        Phase::Search,
        Phase::Hold,
    ] {
        if !args.phases.contains(&phase) {
            continue;
        }
        match phase {
            Phase::Message => phases::message::run(&mut ctx).await?,
            Phase::Rejoin => phases::connect::run(&mut ctx, phases::connect::Mode::Rejoin).await?,
            Phase::Restore => phases::restore::run(&mut ctx).await?,
            Phase::Search => phases::search::run(&mut ctx).await?,
            Phase::Hold => phases::hold::run(&mut ctx).await?,
        }
    }
    Ok(ctx.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_phases_and_flags_parse() {
        let args = Args::parse_from([
            "loadgen",
            "--phase",
            "search",
            "--phase",
            "rejoin",
            "--contacts",
            "50",
            "--search-rate",
            "250",
            "--search-limit",
            "5",
        ]);
        assert_eq!(args.phases, [Phase::Search, Phase::Rejoin]);
        assert_eq!(args.contacts, 50);
        assert_eq!(args.search_rate, 250.0);
        assert_eq!(args.search_limit, 5);
        assert_eq!(args.search_timeout, 5.0);
        assert!(Args::try_parse_from(["loadgen", "--phase", "searches"]).is_err());
    }

    #[test]
    fn seeded_contacts_bring_the_index_with_them() {
        let plain = seed_plan(&Args::parse_from(["loadgen", "--seed-sessions", "10"]));
        assert!(!plain.extras.index && !plain.extras.contacts);
        let index = seed_plan(&Args::parse_from(["loadgen", "--seed-index"]));
        assert!(index.extras.index && !index.extras.contacts);
        let contacts = seed_plan(&Args::parse_from(["loadgen", "--seed-contacts", "4"]));
        assert!(contacts.extras.index && contacts.extras.contacts);
        assert_eq!(contacts.contacts, 4);
        assert_eq!(contacts.connections, 4);
    }
}
