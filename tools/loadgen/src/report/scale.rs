//! Report sections of the directory-scale runs (issues 11 and 15): seeding, contacts, the size
//! of `users` events, `search users`. Same rule as `json.rs`: add fields, never rename one.

use std::collections::BTreeMap;

use serde::Serialize;

use super::json::{Cpu, Latency};

/// Nearest-rank percentile of sorted values (`q` in 0..=1); 0 for no values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Distribution of a size (entries, bytes, results) over a run.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct SizeStats {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl SizeStats {
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let count = values.len() as u64;
        let sum: u64 = values.iter().sum();
        Self {
            count,
            min: values.first().copied().unwrap_or(0),
            p50: percentile(&values, 0.50),
            p99: percentile(&values, 0.99),
            max: values.last().copied().unwrap_or(0),
            mean: if count == 0 {
                0.0
            } else {
                sum as f64 / count as f64
            },
        }
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {}  p99 {}  max {}  (mean {:.0})",
            self.p50, self.p99, self.max, self.mean
        )
    }
}

/// The `users` events received by the joins of a phase.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct UsersEvent {
    pub entries: SizeStats,
    pub bytes: SizeStats,
}

#[derive(Serialize)]
pub struct SeedReport {
    pub sessions: usize,
    /// Contacts per seeded user (ring neighbours), 0 for none.
    pub contacts_per_user: usize,
    /// `privmsg:user:<id>` and `privmsg:usernames` written too.
    pub index: bool,
    /// Messages written, one per contact pair, each in both users' histories.
    pub messages: u64,
    pub connections: usize,
    pub secs: f64,
    pub sessions_per_sec: f64,
}

#[derive(Serialize)]
pub struct ContactsReport {
    /// Contacts each virtual user was meant to get.
    pub per_user: usize,
    pub pairs: u64,
    pub acked_ok: u64,
    /// Messages not sent because a connection was gone, or not answered in time.
    pub not_acked: u64,
    pub errors: BTreeMap<String, u64>,
    pub secs: f64,
}

#[derive(Serialize)]
pub struct SearchReport {
    /// Offered, searches/s.
    pub rate: f64,
    pub duration_secs: f64,
    pub limit: usize,
    /// Distinct usernames the prefixes were cut from, and where they came from.
    pub sampled_usernames: usize,
    pub sample_source: String,
    pub sent: u64,
    /// Answered `{ users }`.
    pub answered: u64,
    /// Users per answer.
    pub results: SizeStats,
    pub empty_results: u64,
    /// `{ error }` answers by reason, plus "no answer within Ns" and "connection gone".
    pub errors: BTreeMap<String, u64>,
    /// Sending -> the answer (`{ users }` or `{ error }`).
    pub latency: Latency,
    pub cpu: Cpu,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[1, 2, 3], 0.5), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2);
    }

    #[test]
    fn size_stats_sort_their_values_first() {
        let stats = SizeStats::of(vec![30, 10, 20, 40]);
        assert_eq!(
            stats,
            SizeStats {
                count: 4,
                min: 10,
                p50: 20,
                p99: 40,
                max: 40,
                mean: 25.0
            }
        );
        assert_eq!(SizeStats::of(vec![]), SizeStats::default());
    }
}
