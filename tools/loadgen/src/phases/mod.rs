//! The phases of a run, in this order: connect (always), contacts (with `--contacts`), message,
//! rejoin, restore, search, hold. Each reads the
//! shared context and adds its section to the report.

pub mod connect;
pub mod contacts;
pub mod hold;
pub mod message;
pub mod restore;
pub mod search;

use std::{sync::Arc, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{Args, client::Conn, client::Hub, report::Report};

/// One virtual user; `users[i].idx == i`, and a user whose connection failed keeps its place
/// (with `conn: None`) so that indices stay stable.
pub struct User {
    pub idx: u32,
    pub url: String,
    pub session_id: String,
    pub user_id: String,
    pub conn: Option<Conn>,
}

pub struct Ctx {
    pub args: Args,
    pub hub: Arc<Hub>,
    pub users: Vec<User>,
    pub report: Report,
    /// Total server RSS before any user connected, KiB.
    pub rss_baseline_kib: u64,
    pub rng: fastrand::Rng,
    /// Random per run: names its users and marks its messages.
    pub run_id: u32,
    /// The load generator's open-file limit, as raised at start.
    pub fd_limit: u64,
}

impl Ctx {
    pub fn connected(&self) -> impl Iterator<Item = &User> {
        self.users.iter().filter(|u| u.conn.is_some())
    }

    pub fn meter(&self) -> crate::usage::Meter {
        crate::usage::Meter::start(
            &self.args.server_pid,
            self.args.redis_pid,
            self.args.threads,
        )
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal, e.g. under the bench).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_message(what.to_owned());
    let style =
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
