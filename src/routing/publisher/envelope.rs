//! What a node publishes on a user's channel, and on the presence channel:
//! `{originNodeID}|{event}|{JSON data}`.
//!
//! Plain text so that an operator's `PSUBSCRIBE 'socket.io*'` reads it, with the origin first so
//! that a node skips its own echo (it delivered locally already) without parsing the JSON.

use serde_json::value::RawValue;

/// The events that travel on a user's channel: per-user events only. In the `contacts` scope
/// that includes the presence of the user's contacts and the introduction of a new one.
pub const ROUTED_EVENTS: &[&str] = &[
    "private message",
    "user connected",
    "user disconnected",
    "typing",
    "messages read",
    "message deleted",
    "message edited",
];

/// The events that travel on the presence channel, to every node (`all` scope).
pub const PRESENCE_EVENTS: &[&str] = &["user connected", "user disconnected"];

/// A payload received on a channel, as [`Envelope::receive`] reads it.
pub enum Received<'a> {
    /// This node's own publication: it delivered to its sockets before publishing.
    Echo,
    /// Not an envelope of an expected event, or data that is not JSON: dropped, never emitted.
    Malformed,
    /// An event and its JSON data, to emit as it came.
    Event(&'a str, &'a RawValue),
}

/// One event for one user, as read from its channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub origin: &'a str,
    pub event: &'a str,
    pub data: &'a str,
}

impl<'a> Envelope<'a> {
    pub fn encode(origin: &str, event: &str, data: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(origin.len() + event.len() + data.len() + 2);
        for (i, part) in [origin, event, data].into_iter().enumerate() {
            if i > 0 {
                out.push(b'|');
            }
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    /// `None` for anything that is not an envelope of a routed event (another publisher on a
    /// `socket.io-user#` channel, a corrupt payload): such a message is dropped, never emitted.
    pub fn decode(payload: &'a [u8]) -> Option<Self> {
        Self::decode_among(payload, ROUTED_EVENTS)
    }

    /// `None` for anything that is not an envelope of one of the `known` events.
    pub fn decode_among(payload: &'a [u8], known: &[&'static str]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut parts = text.splitn(3, '|');
        let (origin, event, data) = (parts.next()?, parts.next()?, parts.next()?);
        let event = known.iter().copied().find(|known| *known == event)?;
        Some(Self {
            origin,
            event,
            data,
        })
    }

    /// What `node` makes of `payload`, received on one of its channels where `known` events
    /// travel: its own echo, something to drop, or an event with its JSON data.
    pub fn receive(payload: &'a [u8], node: &str, known: &[&'static str]) -> Received<'a> {
        if Self::is_from(payload, node) {
            return Received::Echo;
        }
        let event = Self::decode_among(payload, known).and_then(|envelope| {
            let data: &RawValue = serde_json::from_str(envelope.data).ok()?;
            Some((envelope.event, data))
        });
        match event {
            Some((event, data)) => Received::Event(event, data),
            None => Received::Malformed,
        }
    }

    /// Whether `payload` was published by `node` (checked before anything is decoded).
    pub fn is_from(payload: &[u8], node: &str) -> bool {
        payload.len() > node.len()
            && payload.starts_with(node.as_bytes())
            && payload[node.len()] == b'|'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let data = r#"{"content":"a|b","from":"x","to":"y"}"#;
        let bytes = Envelope::encode("node1", "private message", data);
        let envelope = Envelope::decode(&bytes).expect("decodes");
        assert_eq!(
            envelope,
            Envelope {
                origin: "node1",
                event: "private message",
                data
            }
        );
        assert!(Envelope::is_from(&bytes, "node1"));
        assert!(!Envelope::is_from(&bytes, "node"));
        assert!(!Envelope::is_from(&bytes, "node2"));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(Envelope::decode(b"node1|session|{}"), None);
        assert_eq!(
            Envelope::decode_among(b"node1|session|{}", PRESENCE_EVENTS),
            None
        );
        assert!(
            Envelope::decode_among(b"node1|user disconnected|\"u\"", PRESENCE_EVENTS).is_some()
        );
        assert_eq!(
            Envelope::decode_among(b"node1|private message|{}", PRESENCE_EVENTS),
            None
        );
        assert_eq!(Envelope::decode(b"node1|private message"), None);
        assert_eq!(Envelope::decode(b"garbage"), None);
        assert_eq!(Envelope::decode(&[0xff, b'|', b'a', b'|', b'b']), None);
    }
}
