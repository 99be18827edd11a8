//! What `--seed-sessions` writes for one user, as Redis commands: a pure function, so that the
//! key layout is checked by unit tests against docs/protocol.md (sessions, histories) and the design
//! of the contacts scope (`privmsg:user:<id>`, `privmsg:usernames`, `privmsg:contacts:<id>`).

use serde_json::json;

/// The servers' default SESSION_TTL_SECS and MESSAGE_TTL_SECS (24 h, as the Node server).
pub const TTL_SECS: u64 = 86_400;
pub const USERNAMES_KEY: &str = "privmsg:usernames";

/// What to write besides the session hash.
#[derive(Clone, Copy, Debug)]
pub struct Extras {
    /// `privmsg:user:<id>` and the `privmsg:usernames` member.
    pub index: bool,
    /// Contacts set and one message per contact pair in the history.
    pub contacts: bool,
}

/// One seeded user.
pub struct Seeded {
    pub session_id: String,
    pub user_id: String,
    pub username: String,
}

/// splitmix64: IDs and names that follow from (run, index) alone, so that a user's contacts'
/// IDs are known without storing them.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The Node server's userID format: 8 random bytes in hex.
pub fn user_id(run: u32, i: usize) -> String {
    format!("{:016x}", mix((u64::from(run) << 32) ^ i as u64))
}

/// A capitalised 5-letter stem then the index (unique): prefixes spread like real names, so a
/// `search users` prefix of 3 letters matches ~1/17,576 of the users, not all of them.
pub fn username(run: u32, i: usize) -> String {
    let mut h = mix(!((u64::from(run) << 32) ^ i as u64));
    let mut name = String::with_capacity(12);
    for k in 0..5 {
        let letter = b'a' + (h % 26) as u8;
        h /= 26;
        name.push(if k == 0 {
            letter.to_ascii_uppercase()
        } else {
            letter
        } as char);
    }
    name.push_str(&i.to_string());
    name
}

/// The `privmsg:usernames` member: lowercased username, NUL, userID (NUL sorts first, so "ab"
/// comes before "abc").
pub fn username_member(username: &str, user_id: &str) -> String {
    format!("{}\0{user_id}", username.to_lowercase())
}

/// The one message of a contact pair, as the Node server stores it (no `id`, no `timestamp`):
/// servers must serve such histories as they are.
pub fn pair_message(from: &str, to: &str) -> String {
    json!({ "content": "seeded", "from": from, "to": to }).to_string()
}

/// The `privmsg:usernames` entries of many users in one command (one ZADD per user would be
/// most of Redis's work when seeding).
pub fn zadd(members: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut cmd = vec!["ZADD".to_owned(), USERNAMES_KEY.to_owned()];
    for member in members {
        cmd.push("0".to_owned());
        cmd.push(member);
    }
    cmd
}

/// The commands for `user`, but its `privmsg:usernames` entry (see `zadd`); `contacts` are
/// (peer userID, true when `user` sent their message).
pub fn commands(user: &Seeded, contacts: &[(String, bool)], extras: Extras) -> Vec<Vec<String>> {
    let ttl = TTL_SECS.to_string();
    let session = format!("session:{}", user.session_id);
    let s = |v: &str| v.to_owned();
    let mut out = vec![
        vec![
            s("HSET"),
            session.clone(),
            s("userID"),
            user.user_id.clone(),
            s("username"),
            user.username.clone(),
            s("connected"),
            s("false"),
        ],
        vec![s("EXPIRE"), session, ttl.clone()],
    ];
    if extras.index {
        out.push(vec![
            s("SET"),
            format!("privmsg:user:{}", user.user_id),
            user.session_id.clone(),
            s("EX"),
            ttl.clone(),
        ]);
    }
    if extras.contacts && !contacts.is_empty() {
        let set = format!("privmsg:contacts:{}", user.user_id);
        let mut sadd = vec![s("SADD"), set.clone()];
        sadd.extend(contacts.iter().map(|(peer, _)| peer.clone()));
        out.push(sadd);
        out.push(vec![s("EXPIRE"), set, ttl.clone()]);
        let history = format!("messages:{}", user.user_id);
        let mut rpush = vec![s("RPUSH"), history.clone()];
        rpush.extend(contacts.iter().map(|(peer, sent)| match sent {
            true => pair_message(&user.user_id, peer),
            false => pair_message(peer, &user.user_id),
        }));
        out.push(rpush);
        out.push(vec![s("EXPIRE"), history, ttl]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Seeded {
        Seeded {
            session_id: "sid-a".to_owned(),
            user_id: "00000000000000aa".to_owned(),
            username: "Alice7".to_owned(),
        }
    }

    fn joined(commands: &[Vec<String>]) -> Vec<String> {
        commands.iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn a_plain_session_is_written_as_the_node_server_writes_it() {
        let none = Extras {
            index: false,
            contacts: false,
        };
        let peers = [("00000000000000bb".to_owned(), true)];
        assert_eq!(
            joined(&commands(&alice(), &peers, none)),
            [
                "HSET session:sid-a userID 00000000000000aa username Alice7 connected false",
                "EXPIRE session:sid-a 86400",
            ]
        );
    }

    #[test]
    fn the_index_and_contacts_follow_the_contacts_scope_layout() {
        let all = Extras {
            index: true,
            contacts: true,
        };
        let peers = [
            ("00000000000000bb".to_owned(), true),
            ("00000000000000cc".to_owned(), false),
        ];
        let cmds = commands(&alice(), &peers, all);
        let text = joined(&cmds);
        assert_eq!(text[2], "SET privmsg:user:00000000000000aa sid-a EX 86400");
        assert_eq!(
            text[3],
            "SADD privmsg:contacts:00000000000000aa 00000000000000bb 00000000000000cc"
        );
        assert_eq!(text[4], "EXPIRE privmsg:contacts:00000000000000aa 86400");
        assert_eq!(cmds[5][..2], ["RPUSH", "messages:00000000000000aa"]);
        let first: serde_json::Value = serde_json::from_str(&cmds[5][2]).unwrap();
        assert_eq!(first["from"], "00000000000000aa");
        assert_eq!(first["to"], "00000000000000bb");
        let second: serde_json::Value = serde_json::from_str(&cmds[5][3]).unwrap();
        assert_eq!(second["from"], "00000000000000cc");
        assert_eq!(second["to"], "00000000000000aa");
        assert_eq!(text[6], "EXPIRE messages:00000000000000aa 86400");
        assert_eq!(cmds.len(), 7);
    }

    #[test]
    fn a_user_without_contacts_gets_no_empty_set_or_history() {
        let all = Extras {
            index: true,
            contacts: true,
        };
        assert_eq!(commands(&alice(), &[], all).len(), 3);
    }

    #[test]
    fn usernames_go_into_one_zadd_with_score_zero() {
        let members = [
            username_member("Alice7", "00000000000000aa"),
            username_member("bob", "00000000000000bb"),
        ];
        assert_eq!(
            zadd(members),
            [
                "ZADD",
                "privmsg:usernames",
                "0",
                "alice7\x0000000000000000aa",
                "0",
                "bob\x0000000000000000bb"
            ]
        );
    }

    #[test]
    fn ids_and_names_follow_from_run_and_index_and_differ() {
        assert_eq!(user_id(1, 5), user_id(1, 5));
        assert_ne!(user_id(1, 5), user_id(1, 6));
        assert_ne!(user_id(1, 5), user_id(2, 5));
        assert_eq!(user_id(1, 5).len(), 16);
        let name = username(1, 42);
        assert!(name.ends_with("42"), "{name}");
        assert!(name.chars().next().unwrap().is_ascii_uppercase());
        assert!(name[1..5].chars().all(|c| c.is_ascii_lowercase()));
        let stems: std::collections::HashSet<String> =
            (0..1000).map(|i| username(1, i)[..3].to_owned()).collect();
        assert!(stems.len() > 900, "prefixes should spread: {}", stems.len());
    }

    #[test]
    fn members_sort_a_name_before_its_extensions() {
        let ab = username_member("AB", "z");
        let abc = username_member("abc", "a");
        assert!(ab < abc);
        assert_eq!(ab, "ab\0z");
    }
}
