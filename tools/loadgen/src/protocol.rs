//! The Socket.IO v5 / Engine.IO v4 text frames the load generator reads and writes, as pure
//! functions (the socket itself is in `client.rs`). A received frame is recognised by its packet
//! type digits and, for an event, its name: broadcasts are counted without being parsed, and only
//! the few frames whose content matters (`session`, `users`, acks) are parsed as JSON.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One received text frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Engine.IO OPEN (`0{"sid":...}`): answered with a Socket.IO CONNECT carrying the auth.
    Open,
    /// Engine.IO CLOSE (`1`) or Socket.IO DISCONNECT (`41`): the server ended the session.
    Closed,
    /// Engine.IO PING (`2`): answered with PONG (`3`).
    Ping,
    /// Socket.IO CONNECT accepted (`40{"sid":...}`).
    Connected,
    /// Socket.IO EVENT (`42["name",...]`); `name` is None when it is not a plain JSON string.
    Event { name: Option<&'a str> },
    /// Socket.IO ACK (`43<id>[...]`); `id` is None when its digits are missing or overflow.
    Ack { id: Option<usize>, payload: &'a str },
    /// Socket.IO CONNECT_ERROR (`44{"message":...}`).
    ConnectError(&'a str),
    /// Anything else: PONG, NOOP, binary events, packets of other namespaces.
    Other,
}

/// Recognises a frame from its first bytes, without parsing its JSON.
pub fn parse(frame: &str) -> Packet<'_> {
    match frame {
        "1" => return Packet::Closed,
        "2" => return Packet::Ping,
        _ => {}
    }
    if frame.starts_with('0') {
        return Packet::Open;
    }
    let Some(body) = frame.strip_prefix('4') else {
        return Packet::Other;
    };
    // The type is one ASCII digit, so whatever follows it starts on a character boundary.
    let rest = || &body[1..];
    match body.as_bytes().first() {
        Some(b'0') => Packet::Connected,
        Some(b'1') => Packet::Closed,
        Some(b'2') => Packet::Event {
            name: event_name(rest()),
        },
        Some(b'3') => {
            let (id, payload) = split_ack_id(rest());
            Packet::Ack { id, payload }
        }
        Some(b'4') => Packet::ConnectError(rest()),
        _ => Packet::Other,
    }
}

/// `<digits>rest` -> (the digits as a number, rest).
fn split_ack_id(rest: &str) -> (Option<usize>, &str) {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (rest[..digits].parse().ok(), &rest[digits..])
}

/// The name of `[<"name">,...]` (after an optional ack id); None unless it is a plain string
/// (no escapes: every event name of the protocol is plain ASCII).
fn event_name(rest: &str) -> Option<&str> {
    let (_, args) = split_ack_id(rest);
    let quoted = args.strip_prefix("[\"")?;
    let name = &quoted[..quoted.find('"')?];
    (!name.contains('\\')).then_some(name)
}

/// The arguments of an event frame (`42["name",arg,...]`) as one JSON array.
pub fn event_args(frame: &str) -> Option<Value> {
    let rest = frame.strip_prefix("42")?;
    let (_, args) = split_ack_id(rest);
    serde_json::from_str(args).ok()
}

/// `session` event -> (sessionID, userID).
pub fn parse_session(frame: &str) -> Result<(String, String)> {
    let args = event_args(frame).context("unparsable session event")?;
    let field = |name: &str| args[1][name].as_str().map(str::to_owned);
    match (field("sessionID"), field("userID")) {
        (Some(s), Some(u)) => Ok((s, u)),
        _ => bail!("session event without sessionID/userID: {frame}"),
    }
}

/// How a user authenticates in its Socket.IO CONNECT.
pub enum Auth {
    Username(String),
    Session(String),
}

/// The Socket.IO CONNECT packet carrying the auth.
pub fn connect_frame(auth: &Auth) -> String {
    let auth = match auth {
        Auth::Username(name) => json!({ "username": name }),
        Auth::Session(id) => json!({ "sessionID": id }),
    };
    format!("40{auth}")
}

/// A `private message` event, with `ack` as its ack id when one is wanted.
pub fn private_message_frame(ack: Option<usize>, content: &str, to: &str) -> String {
    let ack = ack.map(|id| id.to_string()).unwrap_or_default();
    let payload = json!(["private message", { "content": content, "to": to }]);
    format!("42{ack}{payload}")
}

/// A `search users` request (docs/protocol.md, "Directory scope") with its ack id.
pub fn search_frame(ack: usize, query: &str, limit: usize) -> String {
    let payload = json!(["search users", { "query": query, "limit": limit }]);
    format!("42{ack}{payload}")
}

/// The answer to `search users`: `[{"users":[...]}]` -> how many users, or the `error` reason.
pub fn search_outcome(payload: &str) -> Result<usize, String> {
    let first = ack_body(payload)?;
    match (first.get("users"), first.get("error")) {
        (Some(Value::Array(users)), _) => Ok(users.len()),
        (_, Some(Value::String(reason))) => Err(reason.clone()),
        (_, Some(other)) => Err(other.to_string()),
        _ => Err("answer without users or error".to_owned()),
    }
}

/// The answer to a `private message` sent with an ack: Ok for `{ message }`, else the reason.
pub fn message_outcome(payload: &str) -> Result<(), String> {
    let first = ack_body(payload)?;
    match (first.get("message"), first.get("error")) {
        (Some(_), _) => Ok(()),
        (_, Some(Value::String(reason))) => Err(reason.clone()),
        (_, Some(other)) => Err(other.to_string()),
        _ => Err("ack without message or error".to_owned()),
    }
}

/// The first argument of an ack payload (`[{...}]`).
fn ack_body(payload: &str) -> Result<Value, String> {
    let mut value: Value =
        serde_json::from_str(payload).map_err(|_| "unparsable ack".to_owned())?;
    match value.get_mut(0) {
        Some(first) if first.is_object() => Ok(first.take()),
        _ => Err("ack without an object".to_owned()),
    }
}

/// Entries of a `users` frame, counted without parsing it (it can be tens of MB, and parsing
/// would cost the load generator CPU the other joining sockets need): each entry has exactly one
/// `"userID":` key, and those bytes cannot occur inside a JSON string, where every `"` is
/// escaped. Messages have no `userID` key. Compact JSON, as both servers write it, is assumed.
pub fn users_entries(frame: &str) -> usize {
    frame.matches("\"userID\":").count()
}

/// `http://host:port` (or ws://) to the Engine.IO WebSocket endpoint.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_control_packets_are_recognised() {
        assert_eq!(
            parse(r#"0{"sid":"abc","pingInterval":25000}"#),
            Packet::Open
        );
        assert_eq!(parse("1"), Packet::Closed);
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(parse("3"), Packet::Other);
        assert_eq!(parse("6"), Packet::Other);
    }

    #[test]
    fn socket_io_connect_disconnect_and_connect_error_are_recognised() {
        assert_eq!(parse(r#"40{"sid":"x"}"#), Packet::Connected);
        assert_eq!(parse("41"), Packet::Closed);
        assert_eq!(
            parse(r#"44{"message":"invalid username"}"#),
            Packet::ConnectError(r#"{"message":"invalid username"}"#)
        );
    }

    #[test]
    fn a_ping_with_a_payload_is_not_a_ping() {
        // Only the bare "2" must be answered with "3"; "2probe" belongs to a transport upgrade.
        assert_eq!(parse("2probe"), Packet::Other);
    }

    #[test]
    fn events_are_recognised_by_their_name() {
        let frame = r#"42["private message",{"content":"hi","from":"a","to":"b"}]"#;
        assert_eq!(
            parse(frame),
            Packet::Event {
                name: Some("private message")
            }
        );
        assert_eq!(
            parse(r#"42["user connected",{"userID":"u"}]"#),
            Packet::Event {
                name: Some("user connected")
            }
        );
    }

    #[test]
    fn an_event_with_an_ack_id_still_has_its_name() {
        assert_eq!(
            parse(r#"4217["session",{}]"#),
            Packet::Event {
                name: Some("session")
            }
        );
    }

    #[test]
    fn malformed_events_have_no_name() {
        for frame in [
            "42",
            "42[",
            "42[\"",
            "42[\"unterminated",
            "42{\"not\":\"an array\"}",
            "42[17,\"x\"]",
            r#"42["esc\"aped",1]"#,
        ] {
            assert_eq!(parse(frame), Packet::Event { name: None }, "{frame}");
        }
    }

    #[test]
    fn acks_carry_their_id_and_payload() {
        assert_eq!(
            parse(r#"43123[{"message":{}}]"#),
            Packet::Ack {
                id: Some(123),
                payload: r#"[{"message":{}}]"#
            }
        );
        assert_eq!(
            parse(r#"430[{"error":"x"}]"#),
            Packet::Ack {
                id: Some(0),
                payload: r#"[{"error":"x"}]"#
            }
        );
    }

    #[test]
    fn an_ack_without_a_usable_id_has_none() {
        assert_eq!(
            parse("43[{}]"),
            Packet::Ack {
                id: None,
                payload: "[{}]"
            }
        );
        assert_eq!(
            parse("43"),
            Packet::Ack {
                id: None,
                payload: ""
            }
        );
        let overflow = format!("43{}0[{{}}]", usize::MAX);
        assert!(matches!(parse(&overflow), Packet::Ack { id: None, .. }));
    }

    #[test]
    fn unknown_or_empty_frames_are_other() {
        for frame in ["", "4", "45", "46[]", "x", "é"] {
            assert_eq!(parse(frame), Packet::Other, "{frame:?}");
        }
    }

    #[test]
    fn a_multibyte_character_after_the_type_does_not_panic() {
        assert_eq!(parse("4é"), Packet::Other);
        assert_eq!(
            parse("43é"),
            Packet::Ack {
                id: None,
                payload: "é"
            }
        );
        assert_eq!(parse("42[\"é\"]"), Packet::Event { name: Some("é") });
    }

    #[test]
    fn the_session_event_gives_session_and_user_ids() {
        let frame = r#"42["session",{"sessionID":"s-1","userID":"u-1","username":"al"}]"#;
        assert_eq!(
            parse_session(frame).unwrap(),
            ("s-1".to_owned(), "u-1".to_owned())
        );
    }

    #[test]
    fn a_session_event_missing_an_id_or_unparsable_is_an_error() {
        for frame in [
            r#"42["session",{"sessionID":"s-1"}]"#,
            r#"42["session",{"sessionID":1,"userID":"u"}]"#,
            r#"42["session"]"#,
            r#"42["session",{"sessionID":"s","userID":"u""#,
            "42",
            "",
        ] {
            assert!(parse_session(frame).is_err(), "{frame}");
        }
    }

    #[test]
    fn event_args_parse_the_array_after_the_packet_type() {
        let args = event_args(r#"42["users",[{"userID":"u"}]]"#).unwrap();
        assert_eq!(args[0], "users");
        assert_eq!(args[1][0]["userID"], "u");
        assert!(event_args(r#"43["users"]"#).is_none());
        assert!(event_args("42[").is_none());
    }

    #[test]
    fn the_connect_frame_carries_the_auth_as_json() {
        let frame = connect_frame(&Auth::Username("a \"quoted\" name".to_owned()));
        assert_eq!(frame, r#"40{"username":"a \"quoted\" name"}"#);
        let frame = connect_frame(&Auth::Session("sid".to_owned()));
        assert_eq!(frame, r#"40{"sessionID":"sid"}"#);
    }

    #[test]
    fn a_private_message_frame_carries_its_ack_id_only_when_asked() {
        let with_ack = private_message_frame(Some(42), "lg1:42:7:", "u\"2");
        assert_eq!(
            with_ack,
            r#"4242["private message",{"content":"lg1:42:7:","to":"u\"2"}]"#
        );
        let without = private_message_frame(None, "c", "u");
        assert_eq!(without, r#"42["private message",{"content":"c","to":"u"}]"#);
        // What we send, we can read back.
        assert_eq!(
            parse(&with_ack),
            Packet::Event {
                name: Some("private message")
            }
        );
        assert_eq!(event_args(&with_ack).unwrap()[1]["to"], "u\"2");
    }

    #[test]
    fn a_search_frame_carries_its_ack_id_query_and_limit() {
        let frame = search_frame(1 << 40, "Al\"i", 20);
        assert_eq!(
            frame,
            r#"421099511627776["search users",{"limit":20,"query":"Al\"i"}]"#
        );
        assert_eq!(
            parse(&frame),
            Packet::Event {
                name: Some("search users")
            }
        );
        assert_eq!(event_args(&frame).unwrap()[1]["query"], "Al\"i");
    }

    #[test]
    fn search_answers_give_a_count_or_the_reason() {
        let ok = r#"[{"users":[{"userID":"a","username":"al","connected":true},{"userID":"b"}]}]"#;
        assert_eq!(search_outcome(ok), Ok(2));
        assert_eq!(search_outcome(r#"[{"users":[]}]"#), Ok(0));
        assert_eq!(
            search_outcome(r#"[{"error":"rate limited"}]"#),
            Err("rate limited".to_owned())
        );
        assert_eq!(
            search_outcome(r#"[{"error":{"code":1}}]"#),
            Err(r#"{"code":1}"#.to_owned())
        );
        for bad in ["", "[", "[]", "[1]", r#"[{"users":3}]"#, r#"{"users":[]}"#] {
            assert!(search_outcome(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_acks_are_ok_or_a_reason() {
        assert_eq!(message_outcome(r#"[{"message":{"content":"x"}}]"#), Ok(()));
        assert_eq!(
            message_outcome(r#"[{"error":"server busy"}]"#),
            Err("server busy".to_owned())
        );
        assert!(message_outcome("[{}]").is_err());
    }

    #[test]
    fn users_entries_are_counted_by_their_userid_key() {
        let frame = r#"42["users",[{"userID":"a","username":"x \"userID\": y","connected":true,"messages":[{"content":"\"userID\":","from":"a","to":"b"}]},{"userID":"b","username":"b","connected":false,"messages":[]}]]"#;
        assert_eq!(users_entries(frame), 2);
        assert_eq!(users_entries(r#"42["users",[]]"#), 0);
    }

    #[test]
    fn base_urls_become_websocket_endpoints() {
        assert_eq!(
            ws_url("http://127.0.0.1:3000/"),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            ws_url("https://example.test"),
            "wss://example.test/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            ws_url("ws://h:1"),
            "ws://h:1/socket.io/?EIO=4&transport=websocket"
        );
    }
}
