//! Contacts (`USERS_SCOPE=contacts`): `privmsg:contacts:{userID}`, the set of users a user has
//! exchanged at least one message with, kept in Redis so that every node agrees and a restart
//! loses nothing. Written with the first message between two users; a user's history written
//! before the set existed (by the Node.js server) is folded in at its connect.

use std::time::Duration;

use super::{
    Announcement, MessageStore, Record, StoreError, UserEntry, UserIndex, cluster_append,
    message_batch::MessageBatches,
    redis::{RedisPool, keys, scripts},
};
use crate::domain::UserId;

/// The most contacts [`ContactStore::listed`] looks up inside one script call: each costs two
/// reads (~2 µs) during which Redis serves nobody else, so a set this large holds it ~1 ms.
const MAX_LOOKED_UP_IN_SCRIPT: usize = 512;

/// One member of a contact set, with its `users` entry; `None` when its user is gone.
pub type Listed = (String, Option<UserEntry>);

#[derive(Clone)]
pub struct ContactStore {
    pool: RedisPool,
    /// A contact set's time to live, restarted on every add and on each connect of its owner:
    /// as long as the longer of a session and a history, so that contacts outlive neither.
    ttl: Duration,
    /// The standalone path's writes of messages ([`super::message_batch`]).
    batches: MessageBatches,
}

/// What storing a message between two users did.
pub struct Stored {
    /// The message made the sender a contact of the recipient: the introduction was published
    /// (or its publication failed with the message's, below).
    pub introduced: bool,
    /// Whether the publications reached Redis; the message is stored either way.
    pub published: Result<(), StoreError>,
}

impl ContactStore {
    /// A store whose messages' writes share script calls as `MessageStore`'s do: `messages`
    /// gives the histories' limits, `batch_delay` the wait.
    pub fn new(
        pool: RedisPool,
        ttl: Duration,
        messages: &MessageStore,
        batch_delay: Duration,
    ) -> Self {
        let (cap, history_ttl) = messages.limits();
        let head = [
            cap.to_string(),
            history_ttl.as_secs().to_string(),
            ttl.as_secs().to_string(),
        ]
        .map(String::into_bytes)
        .to_vec();
        let batches = MessageBatches::spawn(
            pool.clone(),
            &scripts::STORE_MESSAGES_CONTACTS,
            head,
            batch_delay,
        );
        Self { pool, ttl, batches }
    }

    /// `user`'s contacts.
    pub async fn of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("SMEMBERS")
            .arg(keys::contacts(user))
            .query_async(&mut conn)
            .await?)
    }

    /// `user`'s contacts, each with its entry, and the set's TTL restarted (its owner is
    /// connecting). One script call on a standalone Redis (`redis-scripts/contact_entries.lua`)
    /// for a set of up to [`MAX_LOOKED_UP_IN_SCRIPT`]; else, and on a cluster, three round
    /// trips: the members, then their user keys, then their sessions (`index`).
    pub async fn listed(&self, user: &str, index: &UserIndex) -> Result<Vec<Listed>, StoreError> {
        let mut conn = self.pool.get().await?;
        if !conn.is_cluster() {
            type Row = (String, Option<String>, Option<String>);
            let rows: Option<Vec<Row>> = scripts::CONTACT_ENTRIES
                .key(keys::contacts(user))
                .arg(self.ttl.as_secs())
                .arg(keys::USER_PREFIX)
                .arg(keys::SESSION_PREFIX)
                .arg(MAX_LOOKED_UP_IN_SCRIPT)
                .invoke_async(&mut conn)
                .await?;
            if let Some(rows) = rows {
                return Ok(rows.into_iter().map(listed_row).collect());
            }
        }
        let members = self.of(user).await?;
        let peers: Vec<&str> = members.iter().map(String::as_str).collect();
        let (_, entries) = tokio::try_join!(self.keep(user, &[]), index.entries(&peers))?;
        Ok(members.into_iter().zip(entries).collect())
    }

    /// Adds `peers` (found in `user`'s history, missing from its set) and restarts the set's
    /// TTL.
    pub async fn keep(&self, user: &str, peers: &[&str]) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let key = keys::contacts(user);
        let mut cmds = Vec::with_capacity(2);
        if !peers.is_empty() {
            cmds.push(redis::cmd("SADD").arg(&key).arg(peers).to_owned());
        }
        cmds.push(
            redis::cmd("EXPIRE")
                .arg(&key)
                .arg(self.ttl.as_secs())
                .to_owned(),
        );
        conn.each::<redis::Value>(cmds).await?;
        Ok(())
    }

    /// Stores a message between two different users in both histories and their conversation's
    /// index, and makes them contacts
    /// of each other; then publishes `introduction` (when the recipient did not have the
    /// sender) and `message`, in that order, so that every node gets the introduction first.
    ///
    /// Standalone Redis: one script call, all or nothing for this message, shared with the
    /// messages that wait with it (`redis-scripts/store_messages_contacts.lua`). Redis Cluster: the three history
    /// commands per history and per conversation index, and SADD + EXPIRE per contact set, concurrently (single-key, each
    /// to its master), then the publications (the introduction first, awaited, only for a
    /// first message).
    ///
    /// An error means the message is not stored (on a cluster: perhaps in part, as for
    /// `MessageStore::store_and_publish`) and nothing was published.
    pub async fn store_and_publish(
        &self,
        messages: &MessageStore,
        record: &Record<'_>,
        message: &Announcement,
        introduction: &Announcement,
    ) -> Result<Stored, StoreError> {
        let (from, to) = (record.from, record.to);
        if !self.pool.is_cluster() {
            let keys = vec![
                keys::messages(from),
                keys::messages(to),
                keys::contacts(from),
                keys::contacts(to),
                record.index_key(),
            ];
            let mut args: Vec<Vec<u8>> = vec![
                record.json.as_bytes().to_vec(),
                from.as_bytes().to_vec(),
                to.as_bytes().to_vec(),
                message.head_before(record.json)?,
                introduction.payload.clone(),
                keys::user_channel(to).into_bytes(),
                (introduction.held_flags() + &message.held_flags()).into_bytes(),
                record.id.as_bytes().to_vec(),
                message.channels.len().to_string().into_bytes(),
            ];
            args.extend(message.channel_names());
            let introduced = self.batches.store(keys, args).await?;
            return Ok(Stored {
                introduced: introduced == 1,
                published: Ok(()),
            });
        }
        // Boxed by `run`, as `MessageStore::store_and_publish`'s cluster path: it is large.
        let work = self.cluster_store_and_publish(messages, record, message, introduction);
        messages.cluster_batches().run(work).await
    }

    /// `store_and_publish` on a Redis Cluster, owning what it needs: it runs with the other
    /// messages of its batch ([`super::cluster_batch`]).
    fn cluster_store_and_publish(
        &self,
        messages: &MessageStore,
        record: &Record<'_>,
        message: &Announcement,
        introduction: &Announcement,
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send + 'static {
        let (from, to) = (record.from.to_owned(), record.to.to_owned());
        let mut contact_writes = Vec::new();
        for (owner, peer) in [(&from, &to), (&to, &from)] {
            let key = keys::contacts(owner);
            contact_writes.push(redis::cmd("SADD").arg(&key).arg(peer).to_owned());
            contact_writes.push(
                redis::cmd("EXPIRE")
                    .arg(&key)
                    .arg(self.ttl.as_secs())
                    .to_owned(),
            );
        }
        let histories = messages.cluster_writes(record);
        let pool = self.pool.clone();
        // From now: a node that stops waits for this message's writes (and their removal).
        let (undos, busy) = (messages.undos().clone(), messages.undos().begin());
        let (message, introduction) = (message.clone(), introduction.clone());
        async move {
            let conn = pool.get().await?;
            let (stored, contacts) = tokio::join!(
                cluster_append::append_all(&undos, busy, &conn, histories),
                cluster_append::bounded(conn.each::<redis::Value>(contact_writes)),
            );
            let added = |reply: Option<&redis::Value>| matches!(reply, Some(redis::Value::Int(1)));
            if let Err(err) = stored {
                // Refused: the contacts this message made are unmade (once; a contact left
                // over shows a user without a conversation, nothing more).
                if let Ok(replies) = &contacts {
                    let undo = [(&from, &to, 0), (&to, &from, 2)]
                        .into_iter()
                        .filter(|(_, _, i)| added(replies.get(*i)))
                        .map(|(owner, peer, _)| {
                            redis::cmd("SREM")
                                .arg(keys::contacts(owner))
                                .arg(peer)
                                .to_owned()
                        })
                        .collect();
                    let _ = cluster_append::bounded(conn.each::<redis::Value>(undo)).await;
                }
                return Err(err);
            }
            // The recipient's SADD (the third command); when it failed, introduce anyway: a
            // `user connected` for a known contact only refreshes its entry.
            let introduced = contacts
                .as_ref()
                .map_or(true, |replies| added(replies.get(2)));
            let published = async {
                if introduced {
                    let introductions = introduction.publications();
                    cluster_append::bounded(conn.publish_each(&introductions)).await?;
                }
                cluster_append::bounded(conn.publish_each(&message.publications())).await
            };
            Ok(Stored {
                introduced,
                published: published.await,
            })
        }
    }
}

/// A row of `contact_entries.lua`: a username means the user is there.
fn listed_row((user, username, connected): (String, Option<String>, Option<String>)) -> Listed {
    let entry = username.map(|username| UserEntry {
        user_id: UserId::from_stored(user.clone()),
        username,
        connected: connected.as_deref() == Some("true"),
    });
    (user, entry)
}
