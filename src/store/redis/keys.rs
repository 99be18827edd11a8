//! Every Redis key name is built here, and only here.

use crate::domain::{SessionId, UserId};

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

/// The sessionIDs that had a socket on a node, for sweeping after it dies.
pub fn node_sessions(node_id: &str) -> String {
    format!("privmsg:node:{node_id}:sessions")
}

/// A session's key from a raw sessionID found in a node's set.
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

/// The node and the socket a presence field names (`None` for any other field).
pub fn parse_socket_field(field: &str) -> Option<(&str, &str)> {
    field.strip_prefix(SOCKET_FIELD_PREFIX)?.split_once(':')
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
    ["privmsg:conversation:", low, ":", high].concat()
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

/// A user's read marks (an extension of the layout): a hash, `{peer}` -> the id of the newest
/// message of that conversation the user has read, and `by:{peer}` -> how far the peer has
/// read it (a copy of the peer's own mark, so that one read at connect gives both).
pub fn read_marks(user: &str) -> String {
    format!("privmsg:read:{user}")
}

/// The field of [`read_marks`] holding how far `peer` has read its conversation with the
/// hash's owner.
pub fn read_by_field(peer: &str) -> String {
    format!("{READ_BY_PREFIX}{peer}")
}

pub const READ_BY_PREFIX: &str = "by:";
