use rmpv::Value;

use super::{Broadcast, Refusal, Request, broadcast, request};
use crate::emitter::args::{Arg, Args};

const MAX: usize = 1 << 20;

/// `to("auth0|5f7c").emit("notice", { hello: 1, n: -2.5, when: new Date(Date.UTC(2021, 0, 1))
/// }, "two", Buffer.from([1, 2]), undefined)`, as the npm emitter's notepack encodes it.
const TO_ONE_USER: &str = "93a7656d697474657283a47479706502a46461746195a66e6f7469636583a568656c6c6f01a16ecbc004000000000000a47768656ed6ff5fee6600a374776fc4020102c0a36e7370a12f83a5726f6f6d7391aa61757468307c35663763a5666c61677380a665786365707490";
/// `volatile.except("bob").emit("ping")`.
const TO_ALL_BUT_BOB: &str = "93a7656d697474657283a47479706502a46461746191a470696e67a36e7370a12f83a5726f6f6d7390a5666c61677381a8766f6c6174696c65c3a665786365707491a3626f62";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("encodes");
    out
}

fn packet(nsp: Value, kind: u64, data: Vec<Value>) -> Vec<u8> {
    encode(&Value::Array(vec![
        "emitter".into(),
        Value::Map(vec![
            ("type".into(), kind.into()),
            ("data".into(), Value::Array(data)),
            ("nsp".into(), nsp),
        ]),
        Value::Map(vec![("rooms".into(), Value::Array(vec!["u1".into()]))]),
    ]))
}

fn refusal(payload: &[u8]) -> Refusal {
    broadcast(payload, MAX).expect_err("refused")
}

#[test]
fn an_emit_to_one_user_from_the_npm_emitter_is_decoded_with_every_argument() {
    let decoded = broadcast(&hex(TO_ONE_USER), MAX).expect("decoded");
    assert_eq!(
        decoded,
        Broadcast {
            event: "notice".into(),
            args: Args(vec![
                Arg::Map(vec![
                    ("hello".into(), Arg::UInt(1)),
                    ("n".into(), Arg::Float(-2.5)),
                    ("when".into(), Arg::Str("2021-01-01T00:00:00.000Z".into())),
                ]),
                Arg::Str("two".into()),
                Arg::Bytes(vec![1, 2]),
                Arg::Null,
            ]),
            rooms: vec!["auth0|5f7c".into()],
            except: vec![],
        }
    );
}

#[test]
fn an_emit_to_everyone_but_one_user_keeps_its_exception() {
    let decoded = broadcast(&hex(TO_ALL_BUT_BOB), MAX).expect("decoded");
    assert_eq!(decoded.event, "ping");
    assert_eq!(decoded.args, Args(vec![]));
    assert!(decoded.rooms.is_empty());
    assert_eq!(decoded.except, vec!["bob".to_owned()]);
}

#[test]
fn arguments_serialize_as_separate_arguments_with_binary_attachments() {
    let decoded = broadcast(&hex(TO_ONE_USER), MAX).expect("decoded");
    let json = serde_json::to_string(&decoded.args).expect("serializes");
    assert_eq!(
        json,
        r#"[{"hello":1,"n":-2.5,"when":"2021-01-01T00:00:00.000Z"},"two",[1,2],null]"#
    );
}

#[test]
fn what_is_not_msgpack_is_refused() {
    // A string of 5 bytes holding 2.
    assert!(matches!(refusal(b"\xa5ab"), Refusal::NotMsgpack(_)));
    let whole = hex(TO_ONE_USER);
    let cut = &whole[..whole.len() - 3];
    assert!(matches!(refusal(cut), Refusal::NotMsgpack(_)));
    assert_eq!(refusal(cut).reason(), "malformed");
}

#[test]
fn bytes_after_the_packet_are_refused() {
    let mut payload = hex(TO_ALL_BUT_BOB);
    payload.push(0xc0);
    assert_eq!(refusal(&payload), Refusal::Shape("bytes after the packet"));
}

#[test]
fn a_packet_of_the_wrong_shape_is_refused() {
    assert!(matches!(
        refusal(&encode(&Value::from(7))),
        Refusal::Shape(_)
    ));
    let two = Value::Array(vec!["emitter".into(), Value::Map(vec![])]);
    assert!(matches!(refusal(&encode(&two)), Refusal::Shape(_)));
    let no_event = packet("/".into(), 2, vec![Value::from(3)]);
    assert_eq!(
        refusal(&no_event),
        Refusal::Shape("the event name is not a string")
    );
    let empty = packet("/".into(), 2, vec![]);
    assert_eq!(
        refusal(&empty),
        Refusal::Shape("the event name is not a string")
    );
}

#[test]
fn another_namespace_or_packet_type_is_refused() {
    let other = packet("/admin".into(), 2, vec!["x".into()]);
    assert_eq!(refusal(&other), Refusal::OtherNamespace);
    assert_eq!(refusal(&other).reason(), "other_namespace");
    let connect = packet("/".into(), 0, vec!["x".into()]);
    assert!(matches!(refusal(&connect), Refusal::Unsupported(_)));
    let without_nsp_is_the_main_one = encode(&Value::Array(vec![
        "emitter".into(),
        Value::Map(vec![
            ("type".into(), 2.into()),
            ("data".into(), Value::Array(vec!["x".into()])),
        ]),
        Value::Map(vec![]),
    ]));
    assert!(broadcast(&without_nsp_is_the_main_one, MAX).is_ok());
}

#[test]
fn reserved_events_are_refused() {
    let payload = packet("/".into(), 2, vec!["disconnect".into()]);
    assert_eq!(refusal(&payload), Refusal::ReservedEvent);
}

#[test]
fn rooms_that_are_not_strings_are_refused() {
    let payload = encode(&Value::Array(vec![
        "emitter".into(),
        Value::Map(vec![
            ("type".into(), 2.into()),
            ("data".into(), Value::Array(vec!["x".into()])),
            ("nsp".into(), "/".into()),
        ]),
        Value::Map(vec![("rooms".into(), Value::Array(vec![1.into()]))]),
    ]));
    assert_eq!(refusal(&payload), Refusal::Shape("a room is not a string"));
}

#[test]
fn a_packet_over_the_size_limit_is_refused_unread() {
    let payload = hex(TO_ONE_USER);
    assert_eq!(
        broadcast(&payload, 16).expect_err("refused"),
        Refusal::TooLarge(16)
    );
}

#[test]
fn arguments_nested_too_deep_are_refused() {
    let mut deep = Value::Nil;
    for _ in 0..200 {
        deep = Value::Array(vec![deep]);
    }
    let payload = packet("/".into(), 2, vec!["x".into(), deep]);
    assert!(matches!(refusal(&payload), Refusal::NotMsgpack(_)));
}

#[test]
fn unknown_extensions_invalid_utf8_and_odd_keys_are_refused() {
    let ext = packet("/".into(), 2, vec!["x".into(), Value::Ext(5, vec![1])]);
    assert!(matches!(refusal(&ext), Refusal::Shape(_)));
    // A str of one byte 0xff.
    let mut bad_utf8 = packet("/".into(), 2, vec!["x".into(), "\u{1}".into()]);
    let at = bad_utf8
        .windows(2)
        .position(|w| w == [0xa1, 0x01])
        .expect("the one-byte string");
    bad_utf8[at + 1] = 0xff;
    assert_eq!(
        refusal(&bad_utf8),
        Refusal::Shape("a string that is not UTF-8")
    );
    let bool_key = packet(
        "/".into(),
        2,
        vec!["x".into(), Value::Map(vec![(true.into(), 1.into())])],
    );
    assert!(matches!(refusal(&bool_key), Refusal::Shape(_)));
    let int_key = packet(
        "/".into(),
        2,
        vec!["x".into(), Value::Map(vec![(7.into(), 1.into())])],
    );
    let decoded = broadcast(&int_key, MAX).expect("an integer key reads as JS reads it");
    assert_eq!(
        decoded.args,
        Args(vec![Arg::Map(vec![("7".into(), Arg::UInt(1))])])
    );
}

#[test]
fn the_emitters_disconnect_request_is_decoded() {
    let payload = br#"{"type":4,"opts":{"rooms":["u1"],"except":[]},"close":true}"#;
    assert_eq!(
        request(payload, MAX),
        Ok(Request::Disconnect {
            rooms: vec!["u1".into()],
            except: vec![],
        })
    );
}

#[test]
fn the_adapters_own_msgpack_requests_are_left_alone() {
    assert_eq!(request(&hex(TO_ALL_BUT_BOB), MAX), Ok(Request::Adapter));
    assert_eq!(request(b"", MAX), Ok(Request::Adapter));
}

#[test]
fn other_or_malformed_requests_are_refused() {
    let join = br#"{"type":2,"opts":{"rooms":["u1"],"except":[]},"rooms":["x"]}"#;
    assert!(matches!(request(join, MAX), Err(Refusal::Unsupported(_))));
    let one_socket = br#"{"type":4,"sid":"abc","close":true}"#;
    assert!(matches!(
        request(one_socket, MAX),
        Err(Refusal::Unsupported(_))
    ));
    assert!(matches!(request(b"{nope", MAX), Err(Refusal::NotJson(_))));
    let bad_rooms = br#"{"type":4,"opts":{"rooms":[1]}}"#;
    assert!(matches!(request(bad_rooms, MAX), Err(Refusal::NotJson(_))));
    assert_eq!(request(br#"{"type":4}"#, 4), Err(Refusal::TooLarge(4)));
}
