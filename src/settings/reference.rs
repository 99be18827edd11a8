//! docs/configuration.md, rendered from the settings' own help and the metrics' own
//! descriptions, so that the reference cannot drift from the code: the test fails when the
//! file differs, and `UPDATE_DOCS=1 cargo test --lib settings::reference` writes it again.
//! The Grafana dashboard (deploy/grafana/privmsg.json) is checked against the same registry.

use std::{collections::BTreeSet, fmt::Write as _, path::PathBuf};

use clap::CommandFactory;

use super::Settings;
use crate::{
    metrics::{Described, Metrics},
    webhooks::metrics::WebhookMetrics,
};

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Every metric a node can serve: the core set, the server API's and the webhooks' (each
/// registered only when its feature is on).
fn every_metric() -> Vec<Described> {
    let metrics = Metrics::new();
    let _api = crate::api::requests_metric(&metrics);
    let _webhooks = WebhookMetrics::new(&metrics);
    metrics.described()
}

/// A help text on one table line: its lines joined, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn render() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from the settings' help (src/settings/mod.rs) and the metrics' own\n\
         descriptions (src/metrics/, src/api/, src/webhooks/metrics.rs); do not edit by hand:\n\
         `UPDATE_DOCS=1 cargo test --lib settings::reference` writes it again, and\n\
         `cargo test` fails while it differs. -->\n\n\
         Every setting is a flag and an environment variable (`privmsg-server --help` prints\n\
         the same text). A value out of its range refuses to start, naming the setting; nothing\n\
         is clamped silently. Logs: `RUST_LOG` (default `info`); sessionIDs, API keys and\n\
         secrets are never logged.\n\n\
         ## Settings\n\n\
         | environment | flag | default | meaning |\n\
         |---|---|---|---|\n",
    );
    let command = Settings::command();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == "help" || long == "version" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|env| format!("`{}`", env.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        let default = match defaults.join(",") {
            joined if joined.is_empty() => "(none)".to_owned(),
            joined => format!("`{joined}`"),
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|help| help.to_string())
            .unwrap_or_default();
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|value| format!("`{}`", value.get_name()))
            .collect();
        let choices = if choices.is_empty() || help.contains('`') {
            String::new()
        } else {
            format!(" One of {}.", choices.join(", "))
        };
        let _ = writeln!(
            out,
            "| {env} | `--{long}` | {default} | {}{choices} |",
            cell(&help)
        );
    }
    out.push_str(
        "\n## Metrics\n\n\
         Served in the Prometheus text format at `/metrics` on `METRICS_ADDR` (by default\n\
         `127.0.0.1` on `PORT` + 6091), never on the client port. `privmsg_api_requests_total`\n\
         exists when `API_KEY` is set, the `privmsg_webhook_*` metrics when `WEBHOOK_URL` is.\n\
         A family with labels shows once a first value of them was counted.\n\
         [operations.md](operations.md) says what to watch.\n\n\
         | metric | type | labels | meaning |\n\
         |---|---|---|---|\n",
    );
    for metric in every_metric() {
        let labels: Vec<String> = metric
            .labels
            .iter()
            .map(|label| format!("`{label}`"))
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            metric.name,
            metric.kind,
            labels.join(", "),
            cell(&metric.help)
        );
    }
    out
}

#[test]
fn docs_configuration_md_is_the_rendering_of_the_settings_and_metrics() {
    let path = repo_file("docs/configuration.md");
    let rendered = render();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/configuration.md");
        return;
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == rendered,
        "docs/configuration.md differs from the settings' help and the metrics: \
         run `UPDATE_DOCS=1 cargo test --lib settings::reference` and commit the result"
    );
}

/// The metric names a PromQL expression reads (`privmsg_...`), a histogram's series
/// (`_bucket`, `_sum`, `_count`) named by their family.
fn names_in(expr: &str, histograms: &BTreeSet<String>) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("privmsg_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|family| histograms.contains(*family))
            })
            .unwrap_or(name);
        names.push(family.to_owned());
        rest = &tail[end..];
    }
    names
}

fn expressions(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => found.push(expr.clone()),
                    _ => expressions(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| expressions(item, found)),
        _ => {}
    }
}

#[test]
fn every_metric_the_grafana_dashboard_queries_exists() {
    let path = repo_file("deploy/grafana/privmsg.json");
    let text = std::fs::read_to_string(&path).expect("read deploy/grafana/privmsg.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let metrics = every_metric();
    let known: BTreeSet<String> = metrics.iter().map(|m| m.name.clone()).collect();
    let histograms: BTreeSet<String> = metrics
        .iter()
        .filter(|m| m.kind == "histogram")
        .map(|m| m.name.clone())
        .collect();
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "the dashboard queries too little");
    let mut queried = BTreeSet::new();
    for expr in &exprs {
        let names = names_in(expr, &histograms);
        assert!(
            !names.is_empty(),
            "a query that reads no metric of ours: {expr}"
        );
        for name in names {
            assert!(
                known.contains(&name),
                "the dashboard queries {name}, which no node serves (in: {expr})"
            );
            queried.insert(name);
        }
    }
    // The figures an operator must see; operations.md names an alert on each.
    for needed in [
        "privmsg_sockets_connected",
        "privmsg_messages_refused_total",
        "privmsg_pubsub_connected",
        "privmsg_redis_command_seconds",
        "privmsg_live_deliveries_dropped_total",
    ] {
        assert!(queried.contains(needed), "the dashboard lacks {needed}");
    }
}

#[test]
fn the_dashboard_check_reads_histogram_series_as_their_family() {
    let histograms = BTreeSet::from(["privmsg_redis_command_seconds".to_owned()]);
    assert_eq!(
        names_in(
            "histogram_quantile(0.99, sum by (le) (rate(privmsg_redis_command_seconds_bucket[5m]))) + privmsg_x_count",
            &histograms
        ),
        ["privmsg_redis_command_seconds", "privmsg_x_count"]
    );
}
