//! Every Redis key name is built here, and only here.
//!
//! A userID is opaque (`auth0|…`, `ann@example.com`, anything but whitespace and control
//! characters), so where one is a part of a name built of several parts with `:` between
//! them (a conversation's key, a read-mark field) it goes in through [`part`], which
//! percent-encodes `%` and `:`: two different pairs of IDs never give one name, and the IDs
//! this server and the Node server mint (UUIDs, hex) are written as they always were. Where an
//! ID is the whole rest of a name after a fixed prefix (`messages:`, `privmsg:user:`, a
//! channel) it is written as is: a prefix followed by the whole ID cannot be ambiguous.
//!
//! Hash tags: a userID holding `{…}` makes the keys it is in hash by what the braces hold, on a
//! Redis Cluster. That is harmless here: on a cluster no script, MULTI or pipeline spans two
//! keys (every write there is per key, each routed by the client library, which reads hash
//! tags as Redis does), so no two keys need to share a slot, and a key's slot only says where
//! it lives, never what it holds. (Anyone who can name a recipient could already pick IDs that
//! land on one slot, by trying UUIDs.)

use std::borrow::Cow;

use crate::domain::{SessionId, UserId};

/// A userID as one part of a name whose parts are joined with `:`: `%` and `:` percent-encoded,
/// so the result holds no `:` and decodes back to one ID only ([`unpart`]).
pub fn part(user: &str) -> Cow<'_, str> {
    if !user.contains(['%', ':']) {
        return Cow::Borrowed(user);
    }
    let mut out = String::with_capacity(user.len() + 4);
    for c in user.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The userID a [`part`] encodes (`None` for a `%` that [`part`] does not write).
pub fn unpart(part: &str) -> Option<Cow<'_, str>> {
    if !part.contains('%') {
        return Some(Cow::Borrowed(part));
    }
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        out.push(match code {
            "25" => '%',
            "3A" => ':',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// SCAN pattern matching every session hash.
pub const SESSION_PATTERN: &str = "session:*";

pub fn session(id: &SessionId) -> String {
    session_raw(id.expose())
}

/// What every session key starts with (for a script that builds them).
pub const SESSION_PREFIX: &str = "session:";

pub fn messages(user: &str) -> String {
    ["messages:", user].concat()
}

pub fn messages_of(user: &UserId) -> String {
    messages(user.as_str())
}

/// The set of node IDs that ever announced themselves (an extension of the layout).
pub const NODES: &str = "privmsg:nodes";

/// A node's liveness key: present while the node refreshes it.
pub fn node_alive(node_id: &str) -> String {
    format!("privmsg:node:{node_id}")
}

/// A node's index of its sockets (socketID -> sessionID), for sweeping after it dies and for
/// its own refresh (`store/presence`).
pub fn node_sockets(node_id: &str) -> String {
    format!("privmsg:node:{node_id}:sockets")
}

/// A session's key from a raw sessionID found in a node's index.
pub fn session_raw(session_id: &str) -> String {
    format!("{SESSION_PREFIX}{session_id}")
}

/// What every presence field of a session hash starts with (`redis-scripts/session_*.lua`
/// test the same prefix).
pub const SOCKET_FIELD_PREFIX: &str = "socket:";

/// The presence field of one socket in its session hash: `socket:{nodeID}:{socketID}`.
pub fn socket_field(node_id: &str, socket_id: &str) -> String {
    format!("{SOCKET_FIELD_PREFIX}{node_id}:{socket_id}")
}

/// The prefix shared by every presence field a node wrote, for sweeping after it dies.
pub fn node_socket_fields(node_id: &str) -> String {
    format!("{SOCKET_FIELD_PREFIX}{node_id}:")
}

/// What every per-user pub/sub channel starts with. The `socket.io` prefix keeps them in an
/// operator's `PSUBSCRIBE 'socket.io*'`.
pub const USER_CHANNEL_PREFIX: &str = "socket.io-user#";

/// The pub/sub channel of one user's events: subscribed by the nodes that hold its sockets.
pub fn user_channel(user: &str) -> String {
    // `concat` sizes the string once; `format!` grows it as it goes (names built per message).
    [USER_CHANNEL_PREFIX, user].concat()
}

/// The Socket.IO emitter's broadcast channel (`@socket.io/redis-emitter`, key `socket.io`,
/// namespace `/`): an emit to everyone, or to several rooms at once.
pub const EMITTER_BROADCAST_CHANNEL: &str = "socket.io#/#";

/// The emitter's request channel (`disconnectSockets`, as JSON). The Redis adapter uses the
/// same name for its own msgpack requests, sharded on a cluster.
pub const EMITTER_REQUEST_CHANNEL: &str = "socket.io-request#/#";

/// The emitter's channel of one room, `socket.io#/#{room}#`: each socket is in the room of its
/// userID, so this is a user's channel for an emitter's `to(userID)`.
pub fn emitter_room_channel(room: &str) -> String {
    [EMITTER_BROADCAST_CHANNEL, room, "#"].concat()
}

/// userID -> its sessionID (a string with the session's TTL): how a user found by search or
/// listed as a contact leads to its session hash (an extension of the layout).
pub fn user(user: &str) -> String {
    format!("{USER_PREFIX}{user}")
}

/// What every [`user`] key starts with (for a script that builds them).
pub const USER_PREFIX: &str = "privmsg:user:";

/// The userIDs a user has exchanged at least one message with (a set).
pub fn contacts(user: &str) -> String {
    format!("privmsg:contacts:{user}")
}

/// The username index: a sorted set, every score 0, so that ZRANGEBYLEX reads it in byte order
/// (see [`username_member`]).
pub const USERNAMES: &str = "privmsg:usernames";

/// Which node runs the user index's upkeep (backfill, then prune pass) this interval: a string
/// holding that node's id, set NX with the interval as TTL (see `users::maintenance`).
pub const INDEX_UPKEEP: &str = "privmsg:upkeep:index";

/// What separates the lowercased username from the userID in a member of [`USERNAMES`]: NUL
/// sorts below every character, so "ab" comes before "abc" whatever the IDs.
pub const USERNAME_SEPARATOR: char = '\0';

/// A member of [`USERNAMES`]: `<lowercased username>\0<userID>`.
pub fn username_member(username: &str, user: &str) -> String {
    format!("{}{USERNAME_SEPARATOR}{user}", username.to_lowercase())
}

/// The userID of a member of [`USERNAMES`], `None` for anything that is not one.
pub fn user_of_member(member: &str) -> Option<&str> {
    member
        .rsplit_once(USERNAME_SEPARATOR)
        .map(|(_, user)| user)
        .filter(|user| !user.is_empty())
}
/// The pub/sub channel every node subscribes to in the `all` scope: `user connected` and
/// `user disconnected` for everyone. `socket.io` prefix, for an operator's
/// `PSUBSCRIBE 'socket.io*'`.
pub const PRESENCE_CHANNEL: &str = "socket.io-presence#";

/// The index of one conversation's messages (an extension of the layout, for `fetch
/// messages`): a sorted set, every score 0, members `<messageID> <JSON>` read in byte order
/// (UUIDv7 ids sort by time). One key per pair of users, the same from both sides.
pub fn conversation(a: &str, b: &str) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    ["privmsg:conversation:", &part(low), ":", &part(high)].concat()
}

/// A member of a [`conversation`] index: the message's id, a space, its JSON.
pub fn conversation_member(id: &str, json: &str) -> String {
    [id, " ", json].concat()
}

/// What every mark of a [`conversation`] index starts with: `!` sorts below every id.
pub const CONVERSATION_MARK: &str = "!";

/// The mark that `user`'s history holds no message of the conversation older than the index's
/// oldest: pages that reach it need not read that history.
pub fn conversation_start(user: &str) -> String {
    format!("{CONVERSATION_MARK}{user}")
}

/// The mark a first page or read mark on a Redis Cluster makes an index exist with, before it
/// reads the history the index is built from (`store/messages/cluster_index.rs`). No userID is
/// empty, so it is no user's [`conversation_start`].
pub const CONVERSATION_BUILT: &str = CONVERSATION_MARK;

/// A user's read marks (an extension of the layout): a hash, `{peer}` -> the id of the newest
/// message of that conversation the user has read, and `by:{peer}` -> how far the peer has
/// read it (a copy of the peer's own mark, so that one read at connect gives both). The peer
/// goes in as a [`part`]: else a peer named `by:x` would share the field of `x`'s copy.
pub fn read_marks(user: &str) -> String {
    format!("privmsg:read:{user}")
}

/// The field of [`read_marks`] holding how far the hash's owner has read its conversation
/// with `peer`.
pub fn read_field(peer: &str) -> Cow<'_, str> {
    part(peer)
}

/// The field of [`read_marks`] holding how far `peer` has read its conversation with the
/// hash's owner.
pub fn read_by_field(peer: &str) -> String {
    [READ_BY_PREFIX, &part(peer)].concat()
}

pub const READ_BY_PREFIX: &str = "by:";

/// The userIDs `user` has blocked (an extension of the layout, `block user`): a set, kept
/// until unblocked. Named to hash like `user`'s history, [`messages`], on a Redis Cluster, so
/// that the script appending a message to that history reads it in the same step
/// (`append_unless_blocked.lua`): a hash tag holding exactly what that key hashes by, which is
/// the whole `messages:<userID>` unless the userID holds a tag of its own. Then, and only
/// then, the userID follows the tag (two IDs may share a tag: `a{x}`, `b{x}`). An ID whose
/// history key hashes by something holding `}` (it has a `}` but no valid tag) cannot be put
/// in a tag: there the tag is the first `s<n>` that hashes to the same slot.
pub fn blocks(user: &str) -> String {
    let history = messages(user);
    let hashed = hash_tag(&history);
    match hashed {
        None if !history.contains('}') => format!("{BLOCKS_PREFIX}{{{history}}}"),
        Some(tag) => format!("{BLOCKS_PREFIX}{{{tag}}}:{user}"),
        None => {
            let slot = redis::cluster_routing::Slot::for_key(&history);
            let tag = (0u32..)
                .map(|n| format!("s{n}"))
                .find(|tag| redis::cluster_routing::Slot::for_key(tag) == slot)
                .unwrap_or_default();
            format!("{BLOCKS_PREFIX}{{{tag}}}:{user}")
        }
    }
}

pub const BLOCKS_PREFIX: &str = "privmsg:blocks:";

/// What Redis Cluster hashes `key` by when it holds a tag (a non-empty `{…}`, the first `{`
/// and the first `}` after it), `None` when it hashes by the whole key.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    Some(&key[open + 1..open + 1 + close]).filter(|tag| !tag.is_empty())
}

/// The webhook deliveries waiting, of every node (a sorted set: member the job's JSON, score
/// the ms it is due, or the end of the lease of the node sending it): `src/webhooks/`.
pub const WEBHOOKS: &str = "privmsg:webhooks";

/// What a field of [`read_marks`] holds the mark of: `(peer, true)` for a [`read_by_field`],
/// `(peer, false)` for a [`read_field`]; `None` for anything else.
pub fn parse_read_field(field: &str) -> Option<(String, bool)> {
    let (peer, theirs) = match field.strip_prefix(READ_BY_PREFIX) {
        Some(peer) => (peer, true),
        None => (field, false),
    };
    if peer.contains(':') {
        return None;
    }
    Some((unpart(peer)?.into_owned(), theirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: [&str; 8] = [
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "a:b",
        "a%3Ab",
        "by:a",
        "{a}",
        "a:",
        ":",
        "%",
    ];

    #[test]
    fn ids_minted_here_or_by_the_node_server_name_keys_as_they_always_did() {
        let (uuid, hex) = ("1b4e28ba-2fa1-11d2-883f-00a0c91e6bf6", "0123456789abcdef");
        assert_eq!(
            conversation(uuid, hex),
            format!("privmsg:conversation:{hex}:{uuid}")
        );
        assert_eq!(read_field(uuid), uuid);
        assert_eq!(read_by_field(hex), format!("by:{hex}"));
        assert_eq!(messages("auth0|x"), "messages:auth0|x");
        assert_eq!(user_channel("a@b"), "socket.io-user#a@b");
    }

    #[test]
    fn no_two_pairs_of_ids_name_one_conversation() {
        let mut seen = std::collections::HashMap::new();
        for a in SPECIAL {
            for b in SPECIAL {
                let key = conversation(a, b);
                let pair = if a <= b { (a, b) } else { (b, a) };
                let earlier = seen.insert(key.clone(), pair);
                assert!(
                    earlier.is_none_or(|p| p == pair),
                    "{key}: {earlier:?} {pair:?}"
                );
            }
        }
        // The case `:` alone made ambiguous: ("x:y", "z") and ("x", "y:z").
        assert_ne!(conversation("x:y", "z"), conversation("x", "y:z"));
    }

    #[test]
    fn read_fields_decode_to_their_peer_and_never_collide() {
        let mut fields = std::collections::HashSet::new();
        for peer in SPECIAL {
            let mine = read_field(peer).into_owned();
            let theirs = read_by_field(peer);
            assert_eq!(parse_read_field(&mine), Some((peer.to_owned(), false)));
            assert_eq!(parse_read_field(&theirs), Some((peer.to_owned(), true)));
            assert!(fields.insert(mine) && fields.insert(theirs), "{peer}");
        }
    }

    #[test]
    fn a_block_set_hashes_like_its_owner_history_and_no_two_users_share_one() {
        use redis::cluster_routing::Slot;
        let mut seen = std::collections::HashSet::new();
        for user in SPECIAL.iter().copied().chain(["a}b", "{}x", "b{a}", "x{y"]) {
            let key = blocks(user);
            assert_eq!(Slot::for_key(&key), Slot::for_key(messages(user)), "{user}");
            assert!(seen.insert(key), "{user}");
        }
        assert_eq!(blocks("0123"), "privmsg:blocks:{messages:0123}");
    }

    #[test]
    fn a_member_of_the_username_index_gives_back_its_whole_user() {
        for user in SPECIAL {
            assert_eq!(user_of_member(&username_member("Ann", user)), Some(user));
        }
    }
}
