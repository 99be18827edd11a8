//! `fetch messages`: a page of one conversation, from its index (`privmsg:conversation:{a}:{b}`,
//! see [`keys::conversation`]): `O(log n + page)` in Redis, one round trip, whatever the
//! history's length.
//!
//! One rule on a standalone Redis and on a cluster: the index is built from the caller's history
//! by the first page or read mark that finds none (once: `O(history)`), and holds every message
//! stored since; until then a message costs no third write (docs/architecture.md, "History pages and the conversation index", says why).
//! What it lacks (the Node server's messages, with no id; messages stored before the index
//! existed) is older than everything in it, and sits only in the user's own history: a page
//! that runs past the
//! index's start reads that history once (`O(history)`, at most HISTORY_CAP entries) for what
//! is older there, and, when nothing is, marks the index (`!{userID}`, see
//! [`keys::conversation_start`]) so that later pages that reach the start skip the read.

use super::{
    MessageStore, StoreError,
    redis::{keys, scripts},
};
use crate::domain::{Before, Message, PageRequest, UserId, legacy_address, legacy_numbers};

/// Marks (of the two users, and the one a cluster's build starts with), at most, sort below
/// every message of an index: a read of the oldest page asks for this many more members, so
/// they never crowd a message out.
const MARKS: usize = 3;

/// A page of a conversation: `messages` oldest first; `more`: older ones exist.
#[derive(Debug, Default)]
pub struct Page {
    pub messages: Vec<Message>,
    pub more: bool,
}

/// What the index answered for one page.
struct Indexed {
    /// Newest first, at most the limit + 1 (the one past the page tells there are more).
    messages: Vec<Message>,
    /// The caller's history is known to hold nothing older than the index.
    complete: bool,
    /// The oldest message of the whole index, if any: older ones are looked for elsewhere.
    oldest: Option<String>,
    /// The index holds any member (a mark is only added to an index that exists).
    exists: bool,
}

impl MessageStore {
    /// The page `request` asks for, of `me`'s conversation with `request.with`.
    pub async fn page(&self, me: &UserId, request: &PageRequest) -> Result<Page, StoreError> {
        let key = keys::conversation(me.as_str(), request.with.as_str());
        let indexed = match request.before {
            // A message without an id is older than all the index holds.
            Some(Before::Legacy(_)) => None,
            _ => Some(self.read_index(&key, me, request).await?),
        };
        let mut page = Page::default();
        if let Some(indexed) = &indexed {
            page.messages
                .extend(indexed.messages.iter().take(request.limit).cloned());
            if indexed.messages.len() > request.limit || indexed.complete {
                page.more = indexed.messages.len() > request.limit;
                page.messages.reverse();
                return Ok(page);
            }
        }
        let oldest = indexed.as_ref().and_then(|i| i.oldest.as_deref());
        let older = self.outside_index(me, request, oldest).await?;
        match &indexed {
            Some(indexed) if indexed.exists && older.none_at_all => {
                self.mark_start(&key, me).await;
            }
            Some(indexed) if !indexed.exists => {
                self.index_on_first_use(&key, me, &request.with).await
            }
            _ => {}
        }
        let wanted = request.limit - page.messages.len();
        let start = older.messages.len().saturating_sub(wanted);
        page.more = start > 0;
        page.messages.reverse();
        let mut messages: Vec<Message> = older.messages.into_iter().skip(start).collect();
        messages.append(&mut page.messages);
        page.messages = messages;
        Ok(page)
    }

    /// The messages of the index just older than `before` (newest first), whether the caller's
    /// history holds nothing older, and the index's oldest message: one round trip.
    async fn read_index(
        &self,
        key: &str,
        me: &UserId,
        request: &PageRequest,
    ) -> Result<Indexed, StoreError> {
        let conn = self.pool.get().await?;
        let max = match &request.before {
            Some(Before::Id(id)) => format!("({id}"),
            _ => "+".to_owned(),
        };
        let page = redis::cmd("ZRANGE")
            .arg(key)
            .arg(&max)
            .arg("-")
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(request.limit + 1 + MARKS)
            .to_owned();
        let count = redis::cmd("ZCARD").arg(key).to_owned();
        let mut pipe = redis::pipe();
        pipe.add_command(page)
            .add_command(count)
            .add_command(oldest(key));
        let (members, count, oldest): (Vec<String>, usize, Vec<String>) =
            pipe.query_async(&mut conn.clone()).await?;
        let own_mark = keys::conversation_start(me.as_str());
        let mut marks = 0;
        let mut complete = false;
        let mut messages = Vec::with_capacity(members.len());
        for member in &members {
            if member.starts_with(keys::CONVERSATION_MARK) {
                marks += 1;
                complete |= *member == own_mark;
            } else if let Some(message) = parse_member(member) {
                messages.push(message);
            }
        }
        // The oldest page returns every mark: an index full to the cap has trimmed its
        // oldest messages, and every history has trimmed them sooner (a history holds at most
        // as many messages as the cap, of every conversation), so nothing older is anywhere.
        let exhausted = messages.len() <= request.limit;
        complete |= exhausted && count.saturating_sub(marks) >= self.cap;
        Ok(Indexed {
            messages,
            complete,
            oldest: oldest
                .first()
                .and_then(|m| m.split(' ').next())
                .map(str::to_owned),
            exists: count > 0,
        })
    }

    /// The messages of the conversation in `me`'s history that the index lacks (older than
    /// `oldest_indexed`, or without an id), just older than `request.before`, oldest first, with
    /// their legacy addresses.
    async fn outside_index(
        &self,
        me: &UserId,
        request: &PageRequest,
        oldest_indexed: Option<&str>,
    ) -> Result<Outside, StoreError> {
        let history = self.for_user(me).await?;
        let numbers = legacy_numbers(&history);
        let (me, peer) = (me.as_str(), request.with.as_str());
        let mut candidates: Vec<Message> = history
            .into_iter()
            .zip(numbers)
            .filter(|(message, _)| message.between(me, peer))
            .filter(|(message, _)| match (&message.id, oldest_indexed) {
                (Some(id), Some(oldest)) => id.as_str() < oldest,
                _ => true,
            })
            .map(|(mut message, legacy)| {
                if let Some(n) = legacy {
                    message.id = Some(legacy_address(n));
                }
                message
            })
            .collect();
        let none_at_all = candidates.is_empty();
        if let Some(address) = request.before.as_ref().map(Before::address) {
            // `before` in the index (or unknown) leaves every candidate older than it.
            if let Some(at) = candidates
                .iter()
                .position(|m| m.id.as_deref() == Some(address.as_str()))
            {
                candidates.truncate(at);
            } else if matches!(request.before, Some(Before::Legacy(_))) {
                candidates.clear();
            }
        }
        Ok(Outside {
            messages: candidates,
            none_at_all,
        })
    }

    /// Whether the conversation of `me` with `with` holds the message `id`: in its index
    /// (`O(log n)`), else, when `id` is older than everything the index holds, in `me`'s
    /// history (a message stored before the index existed). An id the index should hold but
    /// does not (a made-up one, newer than its oldest message) costs no history read.
    pub async fn holds(&self, me: &UserId, with: &UserId, id: &str) -> Result<bool, StoreError> {
        let conn = self.pool.get().await?;
        let key = keys::conversation(me.as_str(), with.as_str());
        let mut pipe = redis::pipe();
        // Members of this id are "<id> <JSON>": from "<id> " to just below "<id>!" (`!` follows
        // the space).
        pipe.cmd("ZRANGE")
            .arg(&key)
            .arg(format!("[{id} "))
            .arg(format!("({id}!"))
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(1);
        pipe.add_command(oldest(&key));
        let (found, oldest): (Vec<String>, Vec<String>) =
            pipe.query_async(&mut conn.clone()).await?;
        if !found.is_empty() {
            return Ok(true);
        }
        // Not in the index: older than it (stored before it existed), or, on a cluster, so new
        // that its addition, sent while the message is published, has not landed yet: either
        // way in `me`'s history, read at most once per such mark (a made-up id costs the same;
        // marks share the socket's rate limit with messages).
        let history = self.for_user(me).await?;
        if oldest.is_empty() {
            self.index_on_first_use(&key, me, with).await;
        }
        Ok(history
            .iter()
            .any(|m| m.id.as_deref() == Some(id) && m.between(me.as_str(), with.as_str())))
    }

    /// A conversation's index is built from `me`'s history the first time a page or a read
    /// mark finds none ([`MessageStore::build_index`]); from then on every message is added to
    /// it, so later pages and marks cost `O(log n)`. Best effort: without it, the next one
    /// reads the history again, which costs time, not correctness.
    async fn index_on_first_use(&self, key: &str, me: &UserId, with: &UserId) {
        if let Err(err) = self.build_index(key, me.as_str(), with.as_str()).await {
            tracing::warn!(error = ?err, "cannot build a conversation's index");
        }
    }

    /// Best effort: without the mark, the next page that reaches the start reads the history
    /// again, which costs time, not correctness.
    async fn mark_start(&self, key: &str, me: &UserId) {
        let marked = async {
            let mut conn = self.pool.get().await?;
            scripts::MARK_CONVERSATION_START
                .key(key)
                .arg(keys::conversation_start(me.as_str()))
                .invoke_async::<i64>(&mut conn)
                .await?;
            Ok::<_, StoreError>(())
        };
        if let Err(err) = marked.await {
            tracing::warn!(error = ?err, "cannot mark a conversation's start");
        }
    }
}

/// What the user's history holds of the conversation beyond the index.
struct Outside {
    /// Just older than `before`, oldest first.
    messages: Vec<Message>,
    /// The history holds nothing of the conversation beyond the index, whatever `before`.
    none_at_all: bool,
}

/// The index's oldest message: every id starts with a hex digit and every mark with `!`, so
/// "[0" is the first message.
fn oldest(key: &str) -> redis::Cmd {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg("[0")
        .arg("+")
        .arg("BYLEX")
        .arg("LIMIT")
        .arg(0)
        .arg(1)
        .to_owned()
}

/// The message of an index member, `<id> <JSON>`; `None` (with a warning) for anything else.
fn parse_member(member: &str) -> Option<Message> {
    let json = member.split_once(' ').map(|(_, json)| json)?;
    serde_json::from_str(json)
        .inspect_err(|err| tracing::warn!(%err, "skipping an index member that is not a message"))
        .ok()
}
