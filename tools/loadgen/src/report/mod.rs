//! The run's results: each phase fills its typed section of the JSON report (`json.rs`, for
//! `--json` and the bench scripts) and adds a few human lines (the summary). Problems worth
//! failing `--assert-no-loss` are collected apart.

pub mod json;
pub mod scale;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::{Args, usage::CpuUse};
use json::{JsonReport, Phases, RunArgs};

#[derive(Default)]
pub struct Report {
    /// What `--json` prints; each phase sets its own section.
    pub phases: Phases,
    lines: Vec<String>,
    /// Losses, duplicates, failed checks: reasons to exit non-zero under `--assert-no-loss`.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    /// A phase could not do its job (e.g. the server never answers `search users`): the run
    /// exits non-zero whatever `--assert-no-loss` says.
    pub broken: bool,
}

impl Report {
    /// A phase's human lines, its CPU line, and a warning when the load generator itself may
    /// have been the bottleneck.
    pub fn summary(&mut self, name: &str, cpu: &CpuUse, lines: Vec<String>) {
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

    pub fn json<'a>(&'a self, args: &'a Args) -> JsonReport<'a> {
        JsonReport {
            args: RunArgs::new(args),
            phases: &self.phases,
            warnings: &self.warnings,
            failures: &self.failures,
        }
    }
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
