//! The run's results: each phase adds a JSON object (for `--json` and the bench plots) and a few
//! human lines (the summary). Problems worth failing `--assert-no-loss` are collected apart.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::usage::CpuUse;

#[derive(Default)]
pub struct Report {
    phases: Map<String, Value>,
    lines: Vec<String>,
    /// Losses, duplicates, failed checks: reasons to exit non-zero under `--assert-no-loss`.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn phase(&mut self, name: &str, mut json: Value, cpu: &CpuUse, lines: Vec<String>) {
        json["cpu"] = cpu.json();
        self.phases.insert(name.to_owned(), json);
        self.lines.push(format!("== {name} ({:.1} s)", cpu.wall));
        self.lines
            .extend(lines.into_iter().map(|l| format!("   {l}")));
        self.lines.push(format!("   {}", cpu.line()));
        if cpu.saturated {
            self.warnings.push(format!(
                "{name}: the load generator used {:.2} cores (> 80% of each worker thread): \
                 it may be the bottleneck; these figures are a lower bound",
                cpu.loadgen
            ));
        }
    }

    pub fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    pub fn human(&self) -> String {
        let mut out = self.lines.join("\n");
        for w in &self.warnings {
            out += &format!("\nWARNING: {w}");
        }
        for f in &self.failures {
            out += &format!("\nFAILED: {f}");
        }
        out
    }

    pub fn json(&self, args: Value) -> Value {
        json!({
            "args": args,
            "phases": self.phases,
            "warnings": self.warnings,
            "failures": self.failures,
        })
    }
}

/// Percentiles of a µs histogram, in milliseconds.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| v as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p95_ms": ms(h.value_at_quantile(0.95)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
        "mean_ms": h.mean() / 1000.0,
    })
}

pub fn latency_line(what: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{what}: none");
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{what} (ms): p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n={})",
        ms(0.50),
        ms(0.95),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

/// `{reason: count}` as a compact human string.
pub fn counts_line(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
