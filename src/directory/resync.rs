//! Keeps the directory in step with Redis: the first load at start, then a fresh listing every
//! `DIRECTORY_RESYNC_SECS`, and at once when the pub/sub connection is whole again after an
//! interruption (presence events published meanwhile never arrived). A presence event a node
//! missed therefore stays wrong in its directory for at most one interval.

use std::time::Duration;

use tokio::{sync::watch, task::JoinHandle};

use super::Directory;
use crate::{metrics::Metrics, store::SessionStore};

/// How soon a failed first load is tried again: connects wait for it.
const LOAD_RETRY: Duration = Duration::from_secs(1);

/// Starts the loop: loads at once, then resyncs every `every` or when `resumed` changes.
pub fn spawn(
    directory: Directory,
    sessions: SessionStore,
    every: Duration,
    mut resumed: watch::Receiver<u64>,
    metrics: Metrics,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let ok = resync(&directory, &sessions, &metrics, failing).await;
            failing = !ok;
            let wait = match directory.is_loaded() {
                true => every,
                false => LOAD_RETRY.min(every),
            };
            let interrupted = async {
                // The pub/sub connection is gone for good (the node is stopping): only the
                // timer is left.
                if resumed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = interrupted => tracing::debug!("pub/sub resumed; resyncing the directory"),
            }
        }
    })
}

/// One listing, reconciled into the directory. Logs a failure once per spell of failures (the
/// metric counts each): an outage would otherwise log a line per second.
async fn resync(
    directory: &Directory,
    sessions: &SessionStore,
    metrics: &Metrics,
    was_failing: bool,
) -> bool {
    let mark = directory.mark();
    match sessions.list().await {
        Ok(listed) => {
            let users = listed.len();
            let corrections = directory.reconcile(mark, listed);
            metrics.directory_resyncs.with_label_values(&["ok"]).inc();
            metrics.directory_corrections.inc_by(corrections as u64);
            if corrections > 0 {
                tracing::debug!(corrections, users, "directory resync healed missed events");
            }
            true
        }
        Err(err) => {
            metrics
                .directory_resyncs
                .with_label_values(&["error"])
                .inc();
            if !was_failing {
                tracing::warn!(error = ?err, "cannot list the users; the directory may be stale");
            }
            false
        }
    }
}
