//! The JSON report (`--json`) as typed structs, serialized with serde. benches/plot.py,
//! benches/summary.py and the published benches/results/*.json use these field names and units:
//! add fields, never rename or drop one (a test below checks the published files still match).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::scale::{ContactsReport, SearchReport, SeedReport, UsersEvent};
use crate::{Args, Phase, usage::CpuUse};

/// The whole document.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub args: RunArgs<'a>,
    pub phases: &'a Phases,
    pub warnings: &'a [String],
    pub failures: &'a [String],
}

/// The settings of the run, for plots and reruns.
#[derive(Serialize)]
pub struct RunArgs<'a> {
    pub label: Option<&'a str>,
    pub urls: &'a [String],
    pub users: usize,
    pub batch: usize,
    pub phases: &'a [Phase],
    pub rate: f64,
    pub duration: f64,
    pub grace: f64,
    pub size: usize,
    pub seed_sessions: usize,
    pub seed_contacts: usize,
    pub contacts: usize,
    pub search_rate: f64,
    pub search_limit: usize,
    pub threads: usize,
    pub server_pids: &'a [u32],
    pub redis_pid: Option<u32>,
    pub no_acks: bool,
    /// The command line as run (ports and pids included), so a figure can be traced to it.
    pub command: Vec<String>,
}

impl<'a> RunArgs<'a> {
    pub fn new(args: &'a Args) -> Self {
        Self {
            label: args.label.as_deref(),
            urls: &args.urls,
            users: args.users,
            batch: args.batch,
            phases: &args.phases,
            rate: args.rate,
            duration: args.duration,
            grace: args.grace,
            size: args.size,
            seed_sessions: args.seed_sessions,
            seed_contacts: args.seed_contacts,
            contacts: args.contacts,
            search_rate: args.search_rate,
            search_limit: args.search_limit,
            threads: args.threads,
            server_pids: &args.server_pid,
            redis_pid: args.redis_pid,
            no_acks: args.no_acks,
            command: std::env::args().collect(),
        }
    }
}

/// One section per phase that ran.
#[derive(Default, Serialize)]
pub struct Phases {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<ContactsReport>,
    /// Every connected user reconnects by sessionID, in batches (same shape as `connect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejoin: Option<ConnectReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldReport>,
}

#[derive(Serialize)]
pub struct ConnectReport {
    pub users: usize,
    pub batch: usize,
    pub seeded_sessions: usize,
    pub attempted: usize,
    pub connected: u64,
    pub failed: u64,
    /// Failed connections by reason.
    pub errors: BTreeMap<String, u64>,
    /// Opening the socket -> receiving `users`.
    pub latency: Latency,
    /// From the first batch's start to the last batch's end: the time for all to join.
    pub join_secs: f64,
    pub users_event: UsersEvent,
    pub server_rss_before_kib: u64,
    pub server_rss_after_kib: u64,
    pub server_rss_per_conn_kib: f64,
    pub cpu: Cpu,
}

#[derive(Serialize)]
pub struct MessageReport {
    /// Offered, msg/s.
    pub rate: f64,
    pub duration_secs: f64,
    pub users: usize,
    pub content_pad_bytes: usize,
    pub sent: u64,
    pub sent_per_sec: f64,
    pub acked_ok: u64,
    /// `{ error }` acks by reason.
    pub error_acks: BTreeMap<String, u64>,
    pub unacked: u64,
    pub delivered: u64,
    pub delivered_per_sec: f64,
    /// With acks: acknowledged `{ message }` but not delivered within the grace period.
    /// With `--no-acks`: sent but not delivered.
    pub lost: u64,
    pub duplicates: u64,
    pub misrouted: u64,
    pub delivered_after_error: u64,
    pub send_failed: u64,
    pub malformed: u64,
    /// Events of no phase of ours received meanwhile (a backend's emits, from the whole run).
    pub other_events: u64,
    /// Send -> delivery to the recipient.
    pub latency: Latency,
    pub ack_latency: Latency,
    pub cpu: Cpu,
    /// The server was not asked for acks (`--no-acks`).
    pub no_acks: bool,
    /// CPU of all --server-pid processes, summed, over this phase, per 1,000 messages delivered
    /// (core-milliseconds); None without server pids or deliveries.
    pub server_cpu_ms_per_1000_delivered: Option<f64>,
    /// The same for --redis-pid.
    pub redis_cpu_ms_per_1000_delivered: Option<f64>,
}

#[derive(Serialize)]
pub struct RestoreReport {
    /// Users reconnected by sessionID.
    pub sample: u64,
    #[serde(flatten)]
    pub tally: RestoreTally,
    /// Reconnecting -> receiving `users`.
    pub latency: Latency,
    pub cpu: Cpu,
}

/// The outcome of every restore check, counted over the sample.
#[derive(Default, Serialize)]
pub struct RestoreTally {
    pub ok: u64,
    pub failed_connect: u64,
    pub wrong_identity: u64,
    pub self_missing: u64,
    pub incomplete: u64,
    pub missing_messages: u64,
    pub misfiled: u64,
    pub stored_despite_error: u64,
    pub history_duplicates: u64,
    pub capped: u64,
}

#[derive(Serialize)]
pub struct HoldReport {
    pub held_secs: u64,
    /// The load generator's open-file limit (it holds one socket per user).
    pub fd_limit: u64,
    pub open: u64,
    pub dropped: u64,
    pub server_rss_before_kib: u64,
    pub server_rss_after_kib: u64,
    pub server_rss_kib: Vec<PidRss>,
    pub server_rss_per_conn_kib: f64,
    pub cpu: Cpu,
}

#[derive(Serialize)]
pub struct PidRss {
    pub pid: u32,
    pub rss_kib: u64,
}

/// Percentiles of a µs histogram, in milliseconds.
#[derive(Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl From<&Histogram<u64>> for Latency {
    fn from(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// CPU over a phase, in cores (1.0 = one core busy all along).
#[derive(Serialize)]
pub struct Cpu {
    pub wall_secs: f64,
    pub loadgen_cores: f64,
    pub loadgen_saturated: bool,
    pub server_cores: Vec<PidCores>,
    pub redis_cores: Option<f64>,
}

#[derive(Serialize)]
pub struct PidCores {
    pub pid: u32,
    pub cores: f64,
}

impl From<&CpuUse> for Cpu {
    fn from(cpu: &CpuUse) -> Self {
        Self {
            wall_secs: cpu.wall,
            loadgen_cores: cpu.loadgen,
            loadgen_saturated: cpu.saturated,
            server_cores: cpu
                .servers
                .iter()
                .map(|&(pid, cores)| PidCores { pid, cores })
                .collect(),
            redis_cores: cpu.redis.map(|(_, cores)| cores),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::{Value, json};

    use super::*;
    use crate::tracker::histogram;

    /// A report with every phase and every list non-empty, so that every field is serialized.
    fn full_report() -> Value {
        let args = Args::parse_from([
            "loadgen",
            "--label",
            "x",
            "--server-pid",
            "1",
            "--redis-pid",
            "2",
        ]);
        let mut h = histogram();
        h.record(1500).unwrap();
        let cpu = || Cpu {
            wall_secs: 1.0,
            loadgen_cores: 0.5,
            loadgen_saturated: false,
            server_cores: vec![PidCores { pid: 1, cores: 0.5 }],
            redis_cores: Some(0.25),
        };
        let phases = Phases {
            connect: Some(ConnectReport {
                users: 1,
                batch: 1,
                seeded_sessions: 0,
                attempted: 1,
                connected: 1,
                failed: 0,
                errors: BTreeMap::new(),
                latency: (&h).into(),
                join_secs: 1.0,
                users_event: UsersEvent::default(),
                server_rss_before_kib: 1,
                server_rss_after_kib: 2,
                server_rss_per_conn_kib: 1.0,
                cpu: cpu(),
            }),
            message: Some(MessageReport {
                rate: 1.0,
                duration_secs: 1.0,
                users: 2,
                content_pad_bytes: 0,
                sent: 1,
                sent_per_sec: 1.0,
                acked_ok: 1,
                error_acks: BTreeMap::new(),
                unacked: 0,
                delivered: 1,
                delivered_per_sec: 1.0,
                lost: 0,
                duplicates: 0,
                misrouted: 0,
                delivered_after_error: 0,
                send_failed: 0,
                malformed: 0,
                other_events: 0,
                latency: (&h).into(),
                ack_latency: (&h).into(),
                cpu: cpu(),
                no_acks: false,
                server_cpu_ms_per_1000_delivered: Some(1.0),
                redis_cpu_ms_per_1000_delivered: Some(1.0),
            }),
            restore: Some(RestoreReport {
                sample: 1,
                tally: RestoreTally::default(),
                latency: (&h).into(),
                cpu: cpu(),
            }),
            hold: Some(HoldReport {
                held_secs: 1,
                fd_limit: 1,
                open: 1,
                dropped: 0,
                server_rss_before_kib: 1,
                server_rss_after_kib: 2,
                server_rss_kib: vec![PidRss { pid: 1, rss_kib: 2 }],
                server_rss_per_conn_kib: 1.0,
                cpu: cpu(),
            }),
            // The sections added since (seed, contacts, rejoin, search) are in no published file.
            ..Phases::default()
        };
        let report = JsonReport {
            args: RunArgs::new(&args),
            phases: &phases,
            warnings: &[],
            failures: &[],
        };
        serde_json::to_value(&report).unwrap()
    }

    /// JSON kinds, with integers and floats apart (Python reads them as int and float).
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Every field of `published` is in `ours`, with the same kind (null matches anything:
    /// an absent pid or label).
    fn assert_covers(ours: &Value, published: &Value, path: &str) {
        if published.is_null() || ours.is_null() {
            return;
        }
        assert_eq!(kind(ours), kind(published), "{path}");
        match (ours, published) {
            (Value::Object(o), Value::Object(p)) => {
                // Maps keyed by error reason have no fixed fields.
                if path.ends_with(".errors") || path.ends_with(".error_acks") {
                    return;
                }
                for (key, value) in p {
                    let here = format!("{path}.{key}");
                    let mine = o.get(key).unwrap_or_else(|| panic!("{here} is gone"));
                    assert_covers(mine, value, &here);
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                if let (Some(o), Some(p)) = (o.first(), p.first()) {
                    assert_covers(o, p, &format!("{path}[0]"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_report_keeps_every_field_of_the_published_results() {
        let ours = full_report();
        for (name, text) in [
            (
                "message-10000",
                include_str!("../../../../benches/results/message-10000.json"),
            ),
            (
                "connect-sessions-0",
                include_str!("../../../../benches/results/connect-sessions-0.json"),
            ),
            (
                "hold-19000",
                include_str!("../../../../benches/results/hold-19000.json"),
            ),
        ] {
            let published: Value = serde_json::from_str(text).unwrap();
            assert_covers(&ours, &published, name);
        }
    }

    #[test]
    fn phases_that_did_not_run_are_absent() {
        let value = serde_json::to_value(Phases::default()).unwrap();
        assert_eq!(value, json!({}));
    }

    #[test]
    fn latency_is_in_milliseconds() {
        let mut h = histogram();
        h.record(2000).unwrap();
        let latency = Latency::from(&h);
        assert_eq!(latency.count, 1);
        assert_eq!(latency.p99_ms, 2.0);
        assert_eq!(latency.mean_ms, 2.0);
    }

    #[test]
    fn the_restore_tally_is_flattened_into_its_phase() {
        let value = full_report();
        let restore = &value["phases"]["restore"];
        assert_eq!(restore["ok"], 0);
        assert_eq!(restore["sample"], 1);
        assert!(restore.get("tally").is_none());
    }
}
