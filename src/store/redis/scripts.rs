//! The Lua scripts of `redis-scripts/`, embedded in the binary. `redis::Script` runs them by
//! EVALSHA and loads them again when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
//!
//! Every script is declared once, in the one list below, which also makes [`ALL`]: a script
//! cannot be declared without being loaded at start-up.

use std::sync::LazyLock;

use redis::Script;

/// Declares each `NAME = "file.lua"` of `redis-scripts/` as a `Script`, and [`ALL`] of them.
macro_rules! scripts {
    ($($name:ident = $file:literal;)+) => {
        $(
            pub static $name: LazyLock<Script> = LazyLock::new(|| {
                Script::new(include_str!(concat!("../../../redis-scripts/", $file)))
            });
        )+

        /// Every script, for loading at start-up.
        pub static ALL: &[&LazyLock<Script>] = &[$(&$name),+];
    };
}

scripts! {
    APPEND_UNLESS_BLOCKED = "append_unless_blocked.lua";
    BLOCK_USER = "block_user.lua";
    CHANGE_MESSAGE = "change_message.lua";
    CLAIM_WEBHOOKS = "claim_webhooks.lua";
    CONTACT_ENTRIES = "contact_entries.lua";
    ERASE_SENT = "erase_sent.lua";
    INDEX_CONVERSATION = "index_conversation.lua";
    INDEX_MESSAGE = "index_message.lua";
    MARK_CONVERSATION_START = "mark_conversation_start.lua";
    MARK_READ = "mark_read.lua";
    PUBLISH = "publish.lua";
    SESSION_CONNECT = "session_connect.lua";
    SESSION_DISCONNECT = "session_disconnect.lua";
    SESSION_SWEEP = "session_sweep.lua";
    STORE_MESSAGES = "store_messages.lua";
    TAKE_BACK = "take_back.lua";
    WEBHOOK_MESSAGE = "webhook_message.lua";
}

/// `take_back.lua`'s source, for a removal that must outlive a Redis restart or a failover
/// (a cache its EVALSHA would miss): it is sent with each removal, rare enough not to matter.
pub const TAKE_BACK_SOURCE: &str = include_str!("../../../redis-scripts/take_back.lua");

/// `append_unless_blocked.lua`'s code, without its comment lines: sent with each message on a
/// cluster (EVAL in the recipient history's pipeline, where a NOSCRIPT after a failover or a
/// restart could not be answered by loading it and trying again, and would refuse the
/// message), so its header is left out of every call's bytes and of Redis's hashing of it.
pub static APPEND_UNLESS_BLOCKED_CODE: LazyLock<String> = LazyLock::new(|| {
    include_str!("../../../redis-scripts/append_unless_blocked.lua")
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
});

#[cfg(test)]
mod tests {
    #[test]
    fn the_code_sent_per_message_is_the_script_without_its_comments() {
        let code = super::APPEND_UNLESS_BLOCKED_CODE.as_str();
        assert!(code.starts_with("if redis.call('SISMEMBER'"), "{code}");
        assert!(
            code.ends_with("return redis.call('RPUSH', KEYS[1], ARGV[1])"),
            "{code}"
        );
        assert!(!code.contains("--"), "{code}");
    }
}
