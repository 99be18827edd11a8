//! A delivery as it waits in Redis: the member of the queue's sorted set is the webhook's body
//! but the recipient's username (looked up when it is sent, so that storing a message costs no
//! read), scored by when it is due. The member never changes, so the delivery keeps its id, and
//! its first due time (`createdAt`), across retries and nodes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::config::{CREATED, UNREAD};

/// One delivery to queue with a message, written by the message log in the message's own
/// writes (`store_messages.lua` on a standalone Redis, a write of its own on a cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// When it is due, in ms since the epoch: its score.
    pub due_ms: u64,
    /// The job's JSON: its member.
    pub member: String,
}

#[derive(Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened, in ms: the message's timestamp for `message.created`, the
    /// end of its unread delay for `message.unread`. Also when the job was first due, which
    /// the retries' delays and their 24 h count from.
    #[serde(rename = "createdAt")]
    pub created_at: u64,
    pub data: Data,
}

#[derive(Serialize, Deserialize)]
pub struct Data {
    /// The message exactly as stored.
    pub message: Box<RawValue>,
    pub recipient: Recipient,
}

#[derive(Serialize, Deserialize)]
pub struct Recipient {
    #[serde(rename = "userID")]
    pub user_id: String,
    /// Absent in the queue, filled in when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// What the worker reads of the message: whom it is from and to, its id (a UUIDv7, which
/// compares with a read mark as a string) and when it was sent (ms).
#[derive(Deserialize)]
pub struct MessageRef {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// The jobs of a stored message: `message.created` due at once, `message.unread` due
/// `unread_after` later, and none of the latter for a message to oneself.
pub fn jobs_for(
    created: bool,
    unread: Option<Duration>,
    message: &RawValue,
    from: &str,
    to: &str,
    timestamp_ms: u64,
) -> Vec<Enqueued> {
    let mut jobs = Vec::new();
    let mut push = |kind: &str, due_ms: u64| {
        let job = Job {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.to_owned(),
            created_at: due_ms,
            data: Data {
                message: message.to_owned(),
                recipient: Recipient {
                    user_id: to.to_owned(),
                    username: None,
                },
            },
        };
        // A job of strings and a valid RawValue always encodes.
        if let Ok(member) = serde_json::to_string(&job) {
            jobs.push(Enqueued { due_ms, member });
        }
    };
    if created {
        push(CREATED, timestamp_ms);
    }
    if let Some(after) = unread.filter(|_| from != to) {
        let after = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        push(UNREAD, timestamp_ms.saturating_add(after));
    }
    jobs
}

/// The longest wait between two attempts, and how long a delivery is tried.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt of a delivery first due at `first_ms`, after a failure at
/// `now_ms`: as long as it has been tried so far, plus a second, at most [`MAX_DELAY`]. With
/// attempts at 0, 1, 3, 7 ... s that is 1, 2, 4, 8 ... s: the doubling, with no counter to
/// store (the member never changes).
pub fn retry_delay(first_ms: u64, now_ms: u64) -> Duration {
    let tried = Duration::from_millis(now_ms.saturating_sub(first_ms));
    (tried + Duration::from_secs(1)).min(MAX_DELAY)
}

/// Whether a delivery first due at `first_ms` has been tried long enough.
pub fn expired(first_ms: u64, now_ms: u64) -> bool {
    Duration::from_millis(now_ms.saturating_sub(first_ms)) >= GIVE_UP_AFTER
}

/// Now, in ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Box<RawValue> {
        RawValue::from_string(r#"{"content":"hi","from":"a","to":"b","id":"x"}"#.into())
            .expect("json")
    }

    #[test]
    fn a_message_queues_what_is_asked_and_no_unread_to_oneself() {
        let unread = Some(Duration::from_secs(30));
        let jobs = jobs_for(true, unread, &message(), "a", "b", 1_000);
        assert_eq!(
            jobs.iter().map(|j| j.due_ms).collect::<Vec<_>>(),
            [1_000, 31_000]
        );
        let job: Job = serde_json::from_str(&jobs[1].member).expect("a job");
        assert_eq!((job.kind.as_str(), job.created_at), (UNREAD, 31_000));
        assert_eq!(job.data.message.get(), message().get());
        assert_eq!(job.data.recipient.user_id, "b");
        assert!(!jobs[1].member.contains("username"));
        assert_ne!(
            job.id,
            serde_json::from_str::<Job>(&jobs[0].member).expect("j").id
        );

        let to_self = jobs_for(true, unread, &message(), "a", "a", 1_000);
        assert_eq!(to_self.len(), 1);
        assert!(jobs_for(false, None, &message(), "a", "b", 1).is_empty());
    }

    #[test]
    fn delays_double_up_to_five_minutes() {
        let mut at = 0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let delay = retry_delay(0, at);
            delays.push(delay.as_secs());
            at += u64::try_from(delay.as_millis()).expect("small");
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert!(!expired(0, 24 * 3600 * 1000 - 1));
        assert!(expired(0, 24 * 3600 * 1000));
    }
}
