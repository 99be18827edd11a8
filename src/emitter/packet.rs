//! What `@socket.io/redis-emitter` publishes, checked: on `socket.io#/#` and
//! `socket.io#/#{room}#` a msgpack array `[uid, packet, opts]` (`packet` = `{ type: 2, data:
//! [event, ...args], nsp }`, `opts` = `{ rooms, except, flags }`); on `socket.io-request#/#`
//! a JSON request (`{ type: 4, opts: { rooms, except }, close }` for `disconnectSockets`).
//! Anything else is refused with a reason, never acted on.

use rmpv::Value;
use serde::Deserialize;

use super::args::{Arg, Args};

/// The namespace this server serves; another one's packets are not for it.
const NAMESPACE: &str = "/";
/// Socket.IO packet types an emitted event may carry: EVENT, and BINARY_EVENT (which a
/// reference server would also broadcast as is).
const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;
/// `disconnectSockets` in the adapters' request protocol.
const REMOTE_DISCONNECT: u64 = 4;
/// How deep an argument may nest: far beyond any notification, and shallow enough that
/// converting and serializing it never nears a stack's end.
const MAX_DEPTH: usize = 64;
/// Events that Socket.IO keeps for itself; the emitter refuses them too (and so does the
/// server API's emit).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// An event to emit to this node's sockets.
#[derive(Debug, PartialEq)]
pub struct Broadcast {
    pub event: String,
    pub args: Args,
    /// The rooms (userIDs) whose sockets get it; empty: every socket.
    pub rooms: Vec<String>,
    /// The rooms whose sockets are left out.
    pub except: Vec<String>,
}

/// A request on the request channel.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// `disconnectSockets(close)`: every socket in `rooms` (empty: all), but those in `except`.
    Disconnect {
        rooms: Vec<String>,
        except: Vec<String>,
    },
    /// Not an emitter's JSON: the Redis adapter's own msgpack traffic on the same channel.
    Adapter,
}

/// Why a packet was refused; [`Refusal::reason`] labels the metric.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refusal {
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("not msgpack: {0}")]
    NotMsgpack(String),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("malformed: {0}")]
    Shape(&'static str),
    #[error("for another namespace")]
    OtherNamespace,
    #[error("a reserved event")]
    ReservedEvent,
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::NotMsgpack(_) | Self::NotJson(_) | Self::Shape(_) => "malformed",
            Self::OtherNamespace => "other_namespace",
            Self::ReservedEvent => "reserved_event",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// Decodes a packet of the broadcast channel or of a room's channel.
pub fn broadcast(payload: &[u8], max_bytes: usize) -> Result<Broadcast, Refusal> {
    if payload.len() > max_bytes {
        return Err(Refusal::TooLarge(max_bytes));
    }
    let mut reader = payload;
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|err| Refusal::NotMsgpack(err.to_string()))?;
    if !reader.is_empty() {
        return Err(Refusal::Shape("bytes after the packet"));
    }
    let Value::Array(parts) = value else {
        return Err(Refusal::Shape("not an array [uid, packet, opts]"));
    };
    let [_uid, packet, opts]: [Value; 3] = parts
        .try_into()
        .map_err(|_| Refusal::Shape("not an array [uid, packet, opts]"))?;
    let packet = fields(packet, "the packet is not a map")?;
    match field(&packet, "nsp") {
        // The reference takes a packet without a namespace for the main one.
        None => {}
        Some(Value::String(nsp)) if nsp.as_str() == Some(NAMESPACE) => {}
        Some(Value::String(_)) => return Err(Refusal::OtherNamespace),
        Some(_) => return Err(Refusal::Shape("nsp is not a string")),
    }
    match field(&packet, "type").and_then(Value::as_u64) {
        Some(EVENT | BINARY_EVENT) => {}
        Some(_) => return Err(Refusal::Unsupported("a packet that is not an event")),
        None => return Err(Refusal::Shape("type is not a packet type")),
    }
    let Some(Value::Array(data)) = take(packet, "data") else {
        return Err(Refusal::Shape("data is not an array [event, ...args]"));
    };
    let mut data = data.into_iter();
    let event = match data.next() {
        Some(Value::String(event)) => event
            .into_str()
            .ok_or(Refusal::Shape("the event name is not UTF-8"))?,
        _ => return Err(Refusal::Shape("the event name is not a string")),
    };
    if RESERVED_EVENTS.contains(&event.as_str()) {
        return Err(Refusal::ReservedEvent);
    }
    let args = data.map(Arg::from_msgpack).collect::<Result<_, _>>()?;
    let opts = fields(opts, "opts is not a map")?;
    Ok(Broadcast {
        event,
        args: Args(args),
        rooms: rooms(field(&opts, "rooms"))?,
        except: rooms(field(&opts, "except"))?,
    })
}

/// The fields of a msgpack map.
fn fields(value: Value, refusal: &'static str) -> Result<Vec<(Value, Value)>, Refusal> {
    match value {
        Value::Map(pairs) => Ok(pairs),
        _ => Err(Refusal::Shape(refusal)),
    }
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

fn take(map: Vec<(Value, Value)>, name: &str) -> Option<Value> {
    map.into_iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// A list of rooms: absent or nil is none (the reference makes an empty set of it).
fn rooms(value: Option<&Value>) -> Result<Vec<String>, Refusal> {
    match value {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(Refusal::Shape("a room is not a string"))
            })
            .collect(),
        Some(_) => Err(Refusal::Shape("rooms is not an array")),
    }
}

/// The emitter's JSON request, as far as this server acts on it.
#[derive(Deserialize)]
struct JsonRequest {
    #[serde(rename = "type")]
    kind: u64,
    #[serde(default)]
    opts: Option<JsonOpts>,
    /// A single socket (a Node server's adapter): not something an emitter sends.
    #[serde(default)]
    sid: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct JsonOpts {
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    except: Option<Vec<String>>,
}

/// Decodes a message of the request channel. As the reference adapter does, one that starts
/// with `{` is an emitter's JSON; anything else is the Redis adapter's own msgpack.
pub fn request(payload: &[u8], max_bytes: usize) -> Result<Request, Refusal> {
    if payload.first() != Some(&b'{') {
        return Ok(Request::Adapter);
    }
    if payload.len() > max_bytes {
        return Err(Refusal::TooLarge(max_bytes));
    }
    let request: JsonRequest =
        serde_json::from_slice(payload).map_err(|err| Refusal::NotJson(err.to_string()))?;
    if request.kind != REMOTE_DISCONNECT {
        // socketsJoin / socketsLeave would put sockets in rooms other than their user's, and
        // serverSideEmit has no listener here.
        return Err(Refusal::Unsupported(
            "a request other than disconnectSockets",
        ));
    }
    if request.sid.is_some() {
        return Err(Refusal::Unsupported("a disconnect of one socket by id"));
    }
    let opts = request.opts.unwrap_or_default();
    Ok(Request::Disconnect {
        rooms: opts.rooms.unwrap_or_default(),
        except: opts.except.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
