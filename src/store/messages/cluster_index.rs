//! A conversation's index on a Redis Cluster, where the index and the two histories sit on
//! different slots: the first page or read mark builds it in steps ([`build`]), and a stored
//! message is added to it only if it exists ([`IndexAdd`]), in an order that leaves no message
//! out (see README, "Message history pages").

use super::{MessageLimits, Record, cluster::expire};
use crate::{
    domain::Message,
    store::{
        StoreError, cluster_append,
        redis::{Conn, RedisPool, keys, scripts},
    },
};

/// Builds the index `key` of `me`'s conversation with `with` from `me`'s history
/// ([`super::MessageLog::build_index`]). No script can read a history and write the index here
/// (other slots), so the order does it: the index is made to exist first (a mark,
/// [`keys::CONVERSATION_BUILT`]), so that every message whose addition ([`IndexAdd`]) comes
/// later is added by it; one whose addition came earlier was in its histories already, so
/// the history read next holds it.
pub async fn build(
    pool: &RedisPool,
    limits: MessageLimits,
    key: &str,
    me: &str,
    with: &str,
) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    let ttl = limits.history_ttl;
    let exists = vec![
        redis::cmd("ZADD")
            .arg(key)
            .arg("NX")
            .arg(0)
            .arg(keys::CONVERSATION_BUILT)
            .to_owned(),
        expire(key, ttl),
    ];
    conn.on_one_slot(exists).await?;
    let read = |user: &str| {
        redis::cmd("LRANGE")
            .arg(keys::messages(user))
            .arg(0)
            .arg(-1)
            .to_owned()
    };
    let (mine_cmd, theirs_cmd) = (read(me), read(with));
    let (mut mine_conn, mut theirs_conn) = (conn.clone(), conn.clone());
    let (history, theirs) = tokio::try_join!(
        mine_cmd.query_async::<Vec<String>>(&mut mine_conn),
        theirs_cmd.query_async::<Vec<String>>(&mut theirs_conn),
    )?;
    let withheld = Withheld::of(&theirs, me, with, limits.cap);
    let mut members = conversation_members(&history, me, with);
    members.retain(|member| !withheld.holds(member, me));
    if members.is_empty() {
        return Ok(());
    }
    let mut add = redis::cmd("ZADD");
    add.arg(key);
    for member in &members {
        add.arg(0).arg(member);
    }
    conn.on_one_slot(vec![add, expire(key, ttl)]).await?;
    Ok(())
}

/// A stored message's addition to its conversation's index, when the index exists: sent only
/// once its histories took it, so that a first page building the index (which makes the index
/// exist, then reads a history: `ClusterLog::build_index`) either finds it in the history or
/// is followed by this addition; and never for a refused message.
pub(super) struct IndexAdd {
    key: String,
    id: String,
    json: String,
    limits: MessageLimits,
}

impl IndexAdd {
    pub(super) fn of(record: &Record<'_>, limits: MessageLimits) -> Self {
        Self {
            key: record.index_key(),
            id: record.id.to_owned(),
            json: record.json.to_owned(),
            limits,
        }
    }

    /// Best effort, as the message is stored: an index that exists but cannot take it is
    /// deleted, so that the next page builds it again from the history rather than miss this
    /// message (only if Redis takes the deletion: otherwise a gap until the index expires).
    pub(super) async fn add(&self, conn: &Conn) {
        let mut call = scripts::INDEX_MESSAGE.key(&self.key);
        call.arg(&self.id)
            .arg(&self.json)
            .arg(self.limits.cap)
            .arg(self.limits.history_ttl.as_secs());
        let added = cluster_append::bounded(async {
            Ok::<i64, StoreError>(call.invoke_async(&mut conn.clone()).await?)
        });
        if let Err(err) = added.await {
            tracing::warn!(error = ?err, "cannot add a message to its conversation's index");
            let deleted = redis::cmd("DEL").arg(&self.key).to_owned();
            let deleted = cluster_append::bounded(async {
                Ok::<i64, StoreError>(deleted.query_async(&mut conn.clone()).await?)
            });
            if let Err(err) = deleted.await {
                tracing::warn!(error = ?err, "cannot drop a conversation's index it lacks");
            }
        }
    }
}

/// The messages `me` sent to `with` that `with`'s history lacks though it was never trimmed
/// (shorter than the cap) or reaches back past them: withheld, as `with` had blocked `me` (`block user`). They stay out of the index the two
/// share (as `index_conversation.lua` leaves them out on a standalone Redis). A message missing
/// from that history only because its own trim dropped it is older than all it holds. One in
/// flight, in `me`'s history but not yet in `with`'s, is added by its own [`IndexAdd`], which
/// follows both appends and finds the index made.
struct Withheld {
    sent: std::collections::HashSet<String>,
    oldest: Option<String>,
    untrimmed: bool,
}

impl Withheld {
    fn of(theirs: &[String], me: &str, with: &str, cap: usize) -> Self {
        let mut sent = std::collections::HashSet::new();
        let mut oldest = None;
        for entry in theirs {
            let Ok(message) = serde_json::from_str::<Message>(entry) else {
                continue;
            };
            let Some(id) = message.id else { continue };
            oldest.get_or_insert_with(|| id.clone());
            if message.from == me && message.to == with {
                sent.insert(id);
            }
        }
        Self {
            sent,
            oldest,
            untrimmed: theirs.len() < cap,
        }
    }

    /// Whether the index `member` ("<id> <JSON>") is a message `me` sent that was withheld.
    fn holds(&self, member: &str, me: &str) -> bool {
        let Some((id, json)) = member.split_once(' ') else {
            return false;
        };
        let past_oldest = self.oldest.as_deref().is_some_and(|oldest| id > oldest);
        let from_me = serde_json::from_str::<Message>(json).is_ok_and(|m| m.from == me);
        from_me && (self.untrimmed || past_oldest) && !self.sent.contains(id)
    }
}

/// The index members of `me`'s conversation with `with` in `history` (`me`'s, oldest first):
/// its messages from the newest back to the first entry without an id (written by the Node
/// server), which stays, with all that is older, where pages find it: in the history (as
/// `index_conversation.lua` selects them on a standalone Redis).
fn conversation_members(history: &[String], me: &str, with: &str) -> Vec<String> {
    let mut members = Vec::new();
    for entry in history.iter().rev() {
        // An entry that is not a message ends it too, as it does the script's.
        let Some((message, id)) = serde_json::from_str::<Message>(entry)
            .ok()
            .and_then(|message| Some((message.clone(), message.id?)))
        else {
            break;
        };
        if message.between(me, with) {
            members.push(keys::conversation_member(&id, entry));
        }
    }
    members
}
