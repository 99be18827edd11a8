use serde_json::{Value, json};

use super::*;
use crate::domain::{Message, ReadMarks, ReadView, Session, SessionId, Username};

fn user(id: &str) -> UserId {
    UserId::from_stored(id.to_owned())
}

fn stored(id: &str, name: &str, connected: bool) -> UserEntry {
    UserEntry {
        user_id: user(id),
        username: name.to_owned(),
        connected,
    }
}

fn session(id: &str, name: &str) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user(id),
        username: Username::from_stored(name.to_owned()),
    }
}

/// `users` for `me`, as a JSON value sorted by userID (the directory has no order).
fn users(directory: &Directory, me: &Session, history: &[Message]) -> Value {
    let marks = ReadMarks::default();
    let read = ReadView::new(&marks, history, me.user_id.as_str());
    let json = directory.with_users(me, history, &read, &Default::default(), |users| {
        serde_json::to_string(users)
    });
    let mut users: Vec<Value> = serde_json::from_str(&json.expect("encodes")).expect("valid JSON");
    users.sort_by_key(|u| u["userID"].as_str().map(str::to_owned));
    Value::Array(users)
}

#[test]
fn the_first_load_fills_the_directory_and_counts_no_correction() {
    let directory = Directory::new(Metrics::new());
    let mark = directory.mark();

    let corrections = directory.reconcile(mark, vec![stored("a", "alice", false)]);

    assert_eq!(corrections, 0);
    assert!(directory.is_loaded());
    assert_eq!(directory.read().entries.len(), 1);
}

#[test]
fn a_resync_heals_missed_events_but_keeps_what_events_said_during_its_listing() {
    let directory = Directory::new(Metrics::new());
    directory.reconcile(
        0,
        vec![stored("a", "alice", false), stored("b", "bob", true)],
    );
    directory.connected(&user("c"), "carol");

    // The listing starts; carol leaves and dave arrives meanwhile, after it read them.
    let mark = directory.mark();
    directory.disconnected("c");
    directory.connected(&user("d"), "dave");
    let listed = vec![
        stored("a", "alice", true), // alice's connect was missed: Redis wins
        stored("c", "carol", true), // read before carol left: the event wins
                                    // bob expired; dave was written after the listing passed him
    ];
    let corrections = directory.reconcile(mark, listed);

    assert_eq!(corrections, 2, "alice corrected, bob removed");
    let state = directory.read();
    let status = |id: &str| state.entries.get(id).map(|e| e.connected);
    assert_eq!(status("a"), Some(true));
    assert_eq!(status("b"), None);
    assert_eq!(status("c"), Some(false));
    assert_eq!(status("d"), Some(true));
}

#[test]
fn users_lists_self_first_hand_and_each_peer_with_its_conversation() {
    let directory = Directory::new(Metrics::new());
    directory.reconcile(
        0,
        vec![stored("a", "alice", true), stored("b", "bob", false)],
    );
    let me = session("m", "me");
    let history = vec![Message {
        content: "hi \"bob\"".into(),
        from: "m".into(),
        to: "b".into(),
        id: None,
        timestamp: None,
        edited_at: None,
    }];

    let users = users(&directory, &me, &history);

    assert_eq!(
        users,
        json!([
            { "userID": "a", "username": "alice", "connected": true, "messages": [], "unread": 0 },
            { "userID": "b", "username": "bob", "connected": false, "unread": 0,
              "messages": [{ "content": "hi \"bob\"", "from": "m", "to": "b" }] },
            { "userID": "m", "username": "me", "connected": true, "messages": [], "unread": 0 },
        ])
    );
}

#[test]
fn a_user_the_directory_knows_is_listed_once() {
    let directory = Directory::new(Metrics::new());
    directory.reconcile(0, vec![stored("m", "old name", false)]);

    let users = users(&directory, &session("m", "me"), &[]);

    assert_eq!(
        users,
        json!([{ "userID": "m", "username": "me", "connected": true, "messages": [], "unread": 0 }])
    );
}

#[test]
fn a_departure_of_a_user_never_listed_is_ignored() {
    let directory = Directory::new(Metrics::new());

    directory.disconnected("ghost");

    assert!(directory.read().entries.is_empty());
}
