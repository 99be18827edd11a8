//! What a node publishes on a user's channel, and on the presence channel:
//! `{originNodeID}|{event}|{JSON data}`.
//!
//! Plain text so that an operator's `PSUBSCRIBE 'socket.io*'` reads it, with the origin first so
//! that a node skips its own echo (it delivered locally already) without parsing the JSON.

/// The events that travel on a user's channel: per-user events only. In the `contacts` scope
/// that includes the presence of the user's contacts and the introduction of a new one.
pub const ROUTED_EVENTS: &[&str] = &["private message", "user connected", "user disconnected"];

/// The events that travel on the presence channel, to every node (`all` scope).
pub const PRESENCE_EVENTS: &[&str] = &["user connected", "user disconnected"];

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
