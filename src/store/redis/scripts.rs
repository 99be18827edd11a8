//! The Lua scripts of `redis-scripts/`, embedded in the binary. `redis::Script` runs them by
//! EVALSHA and loads them again when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).

use std::sync::LazyLock;

use redis::Script;

pub static STORE_MESSAGES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis-scripts/store_messages.lua")));

pub static SESSION_CONNECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis-scripts/session_connect.lua")));

pub static SESSION_DISCONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/session_disconnect.lua"
    ))
});

pub static SESSION_SWEEP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis-scripts/session_sweep.lua")));

/// Every script, for loading at start-up.
pub static ALL: [&LazyLock<Script>; 3] = [&SESSION_CONNECT, &SESSION_DISCONNECT, &SESSION_SWEEP];

pub static STORE_MESSAGES_CONTACTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/store_messages_contacts.lua"
    ))
});

pub static MARK_CONVERSATION_START: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/mark_conversation_start.lua"
    ))
});

pub static INDEX_CONVERSATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/index_conversation.lua"
    ))
});

pub static MARK_READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis-scripts/mark_read.lua")));

pub static CONTACT_ENTRIES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis-scripts/contact_entries.lua")));

pub static PUBLISH_ANNOUNCEMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/publish_announcement.lua"
    ))
});

pub static SPUBLISH_UNLESS_ECHO: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis-scripts/spublish_unless_echo.lua"
    ))
});
