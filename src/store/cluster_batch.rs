//! Private messages written to a Redis Cluster together: a message's keys sit on different
//! masters, so no script takes a batch there (see [`super::message_batch`] for the standalone
//! batches), but the requests of many messages can still leave at once. One task per node
//! gathers the messages that arrive within `STORE_BATCH_DELAY_US` (as the standalone batches
//! do, [`Linger`]) and starts their writes together, in one poll: redis-rs then sends each
//! master every request of the batch in one write, and its replies come back in one read,
//! rather than a round of wake-ups and system calls per message on the node, in redis-rs's
//! cluster task and on each master's connection (a cluster node cost 2.4× a standalone one
//! per message, BENCHMARKS.md).
//!
//! Each message keeps its own writes, timeouts and undo ([`super::cluster_append`]): a batch
//! runs as a task of its own, so a master that is slow or down holds back only the messages
//! that wait on it, never the next batch.

use std::{future::Future, pin::Pin, time::Duration};

use futures_util::future::join_all;
use prometheus::Histogram;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{
    StoreError,
    message_batch::{Linger, Queued, gather, queue_and_wait},
};

/// The most messages started at once.
const MAX_BATCH: usize = 256;

/// How many messages may wait for the gathering task before senders wait for room.
const QUEUE: usize = 4096;

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Job {
    work: Work,
    queued: Instant,
}

impl Queued for Job {
    fn queued(&self) -> Instant {
        self.queued
    }
}

/// The sending side, kept by the cluster message log.
#[derive(Clone)]
pub struct ClusterBatches {
    jobs: mpsc::Sender<Job>,
}

impl ClusterBatches {
    /// Starts the gathering task; `delay`: see [`Linger`]; each batch's size goes to `sizes`
    /// (the standalone batches' histogram: on a cluster, the messages started together).
    pub fn spawn(delay: Duration, sizes: Histogram) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(start_batches(queue, delay, sizes));
        Self { jobs }
    }

    /// Runs `work` (one message's writes and publications) with the others of its batch; a
    /// node that is stopping runs none ([`StoreError::stopping`]). `work` is boxed here, before
    /// the returned future exists, so that the caller's future stays small (socketioxide
    /// copies every handler's future as it spawns it).
    pub fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + '_ {
        let (done, outcome) = oneshot::channel();
        let work: Work = Box::pin(async move {
            // A sender that gave up (its socket task was dropped) needs no answer.
            let _ = done.send(work.await);
        });
        let job = Job {
            work,
            queued: Instant::now(),
        };
        queue_and_wait(&self.jobs, job, outcome)
    }
}

/// The gathering task: each batch it gathers starts as a task of its own.
async fn start_batches(mut queue: mpsc::Receiver<Job>, delay: Duration, sizes: Histogram) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut linger = Linger::default();
    while gather(&mut queue, &mut batch, MAX_BATCH, &mut linger, delay).await {
        sizes.observe(batch.len() as f64);
        let works: Vec<Work> = batch.drain(..).map(|job| job.work).collect();
        tokio::spawn(join_all(works));
    }
}
