//! The user index, an extension of the layout that lets a node find users without listing
//! every session: `privmsg:user:{userID}` (the user's sessionID, with the session's TTL) and
//! `privmsg:usernames` (a sorted set of `<lowercased username>\0<userID>`, every score 0,
//! read in byte order with ZRANGEBYLEX for `search users`).
//!
//! A session that expires leaves its member in `privmsg:usernames` behind: a search that meets
//! a member whose `privmsg:user:` key is gone removes it and skips it, and a background pass
//! ([`maintenance`]) removes the rest, so that an expired user is never found.

pub mod maintenance;

use std::time::Duration;

use prometheus::IntCounter;

use super::{
    StoreError, UserEntry,
    redis::{
        Conn, RedisPool,
        keys::{self, USERNAME_SEPARATOR},
    },
};
use crate::domain::{Session, SessionId, UserId, Username};

/// How many pages of the username index one search reads at most: a page that is all
/// expired members costs one more, and a bound keeps a search cheap whatever the index holds.
const MAX_PAGES: usize = 4;

#[derive(Clone)]
pub struct UserIndex {
    pool: RedisPool,
    session_ttl: Duration,
    /// Members of the username index removed because their session had expired.
    pruned: IntCounter,
}

impl UserIndex {
    pub fn new(pool: RedisPool, session_ttl: Duration, pruned: IntCounter) -> Self {
        Self {
            pool,
            session_ttl,
            pruned,
        }
    }

    /// Indexes `session` (at each connect, so that the key lives as long as the session): the
    /// user's key first, then its username ([`Conn::in_order`]). In that order, because a search that sees the
    /// username but not yet the key would take the user for expired and drop it. `previous`,
    /// the name the session had before a token renamed it, leaves the index right after the
    /// new name enters it, in the same step (one key: one slot on a cluster too), so that
    /// no search finds the user under a name it no longer has, nor misses it meanwhile.
    pub async fn record(
        &self,
        session: &Session,
        previous: Option<&Username>,
    ) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let user = session.user_id.as_str();
        let set = self.set_key(user, session.id.expose());
        let member = keys::username_member(session.username.as_str(), user);
        // A rename that changes only the case keeps the member: removing it would unindex.
        let old = previous
            .map(|name| keys::username_member(name.as_str(), user))
            .filter(|old| *old != member);
        let mut index = vec![
            redis::cmd("ZADD")
                .arg(keys::USERNAMES)
                .arg(0)
                .arg(&member)
                .to_owned(),
        ];
        if let Some(old) = old {
            index.push(redis::cmd("ZREM").arg(keys::USERNAMES).arg(old).to_owned());
        }
        conn.in_order(vec![vec![set], index]).await?;
        Ok(())
    }

    /// Keeps the user's key as long as its session, when the session is saved without a
    /// connect (the last socket leaving restarts the session's TTL).
    pub async fn refresh(&self, session: &Session) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let set = self.set_key(session.user_id.as_str(), session.id.expose());
        conn.each::<redis::Value>(vec![set]).await?;
        Ok(())
    }

    /// The sessionID a user's key names (`AUTH=jwt`: a token names a user, this leads to
    /// the session it had, on whatever node it was made).
    pub async fn session_of(&self, user: &UserId) -> Result<Option<SessionId>, StoreError> {
        let conn = self.pool.get().await?;
        let get = redis::cmd("GET").arg(keys::user(user.as_str())).to_owned();
        let found: Vec<Option<String>> = conn.each(vec![get]).await?;
        Ok(found
            .into_iter()
            .flatten()
            .next()
            .and_then(|id| SessionId::parse(&id)))
    }

    /// Makes `session` the user's own unless it already has one (`SET NX`), so that two
    /// nodes that see a user's first token at once agree on one session: false when another
    /// session got there first.
    pub async fn claim(&self, session: &Session) -> Result<bool, StoreError> {
        let conn = self.pool.get().await?;
        let mut set = self.set_key(session.user_id.as_str(), session.id.expose());
        set.arg("NX");
        let set: Vec<Option<String>> = conn.each(vec![set]).await?;
        Ok(set.into_iter().flatten().next().is_some())
    }

    fn set_key(&self, user: &str, session_id: &str) -> redis::Cmd {
        let mut set = redis::cmd("SET");
        set.arg(keys::user(user))
            .arg(session_id)
            .arg("EX")
            .arg(self.session_ttl.as_secs());
        set
    }

    /// The users whose lowercased username starts with `prefix` (already lowercased), in
    /// username order, at most `limit`, never `caller`. Members whose session has expired are
    /// removed from the index on the way.
    pub async fn search(
        &self,
        prefix: &str,
        limit: usize,
        caller: &str,
    ) -> Result<Vec<UserEntry>, StoreError> {
        let conn = self.pool.get().await?;
        let mut from = [b"[", prefix.as_bytes()].concat();
        // 0xFF never occurs in UTF-8: every member starting with the prefix sorts below it.
        let to = [b"[", prefix.as_bytes(), &[0xff]].concat();
        let mut found = Vec::with_capacity(limit);
        for _ in 0..MAX_PAGES {
            // One more than wanted: the caller may be among them.
            let page = limit - found.len() + 1;
            let members: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(keys::USERNAMES)
                .arg(&from)
                .arg(&to)
                .arg("LIMIT")
                .arg(0)
                .arg(page)
                .query_async(&mut conn.clone())
                .await?;
            let candidates: Vec<(&str, &str)> = members
                .iter()
                .filter_map(|m| Some((m.as_str(), keys::user_of_member(m)?)))
                .filter(|(_, user)| *user != caller)
                .collect();
            let users: Vec<&str> = candidates.iter().map(|(_, user)| *user).collect();
            let mut expired = Vec::new();
            for ((member, _), entry) in candidates.iter().zip(lookup(&conn, &users).await?) {
                match entry {
                    Some(entry) => found.push(entry),
                    None => expired.push(*member),
                }
            }
            self.prune(&conn, &expired).await;
            match members.last() {
                Some(last) if members.len() == page && found.len() < limit => {
                    from = [b"(", last.as_bytes()].concat();
                }
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Removes `members` from the username index and returns how many were there (best
    /// effort: the next search or pass tries again).
    async fn prune(&self, conn: &Conn, members: &[&str]) -> u64 {
        if members.is_empty() {
            return 0;
        }
        let mut rem = redis::cmd("ZREM");
        rem.arg(keys::USERNAMES).arg(members);
        match conn.each::<u64>(vec![rem]).await {
            Ok(removed) => {
                let removed = removed.iter().sum();
                self.pruned.inc_by(removed);
                removed
            }
            Err(err) => {
                tracing::warn!(error = ?err, "cannot prune the username index");
                0
            }
        }
    }

    /// Revocation: the user's key goes, so that the session it named (deleted) is never made
    /// again under its old sessionID: with `AUTH=jwt` the next token finds no key and makes a
    /// new session. The username index's entries of the user lead nowhere then, and searches
    /// drop them on the way, as for an expired session.
    pub async fn unlink(&self, user: &UserId) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let del = redis::cmd("DEL").arg(keys::user(user.as_str())).to_owned();
        conn.each::<redis::Value>(vec![del]).await?;
        Ok(())
    }

    /// Erasure: takes every name of `user` out of the username index (a ZSCAN for its members,
    /// whatever names it had), then deletes its key, last: the key is how the erasure knows the
    /// user ([`UserIndex::session_of`]), so a run that failed part-way can run again.
    pub async fn forget(&self, user: &UserId) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let user = user.as_str();
        let pattern = ["*", &USERNAME_SEPARATOR.to_string(), &glob_escaped(user)].concat();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(keys::USERNAMES)
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn.clone())
                .await?;
            // ZSCAN answers member, score, member, score...
            let members: Vec<&String> = page
                .iter()
                .step_by(2)
                .filter(|member| keys::user_of_member(member) == Some(user))
                .collect();
            if !members.is_empty() {
                let mut rem = redis::cmd("ZREM");
                rem.arg(keys::USERNAMES).arg(members);
                conn.each::<redis::Value>(vec![rem]).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let key = redis::cmd("DEL").arg(keys::user(user)).to_owned();
        conn.each::<redis::Value>(vec![key]).await?;
        Ok(())
    }

    /// The entries of `users` (username, status), in order; `None` for a user whose session
    /// is gone.
    pub async fn entries(&self, users: &[&str]) -> Result<Vec<Option<UserEntry>>, StoreError> {
        let conn = self.pool.get().await?;
        lookup(&conn, users).await
    }
}

/// `text` as a literal in a Redis glob pattern (MATCH): `*`, `?`, `[`, `]` and `\\` escaped.
fn glob_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Each user's session, through its `privmsg:user:` key: two pipelined round trips whatever
/// the number of users (on a cluster, concurrent commands, each to its key's master).
async fn lookup(conn: &Conn, users: &[&str]) -> Result<Vec<Option<UserEntry>>, StoreError> {
    let gets = users
        .iter()
        .map(|user| redis::cmd("GET").arg(keys::user(user)).to_owned())
        .collect();
    let sessions: Vec<Option<String>> = conn.each(gets).await?;
    let reads = sessions
        .iter()
        .flatten()
        .map(|session| {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(keys::session_raw(session))
                .arg("userID")
                .arg("username")
                .arg("connected");
            cmd
        })
        .collect();
    type Row = (Option<String>, Option<String>, Option<String>);
    let mut rows = conn.each::<Row>(reads).await?.into_iter();
    Ok(users
        .iter()
        .zip(sessions)
        .map(|(user, session)| {
            session?;
            let (id, username, connected) = rows.next()?;
            // A key naming another user's session is not this user's: treat it as gone.
            (id.as_deref() == Some(*user)).then(|| UserEntry {
                user_id: UserId::from_stored((*user).to_owned()),
                username: username.unwrap_or_default(),
                connected: connected.as_deref() == Some("true"),
            })
        })
        .collect())
}
