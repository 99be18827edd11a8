//! The arguments of an emitter's event, checked at decode time and serialized for
//! socketioxide: several arguments as a tuple (so each is an argument of its own, as
//! `socket.emit(event, ...args)` has them), binary data as binary attachments.

use rmpv::Value;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};

use super::packet::Refusal;

/// One argument, as the Node reference would hand it to socket.io after notepack decoded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// A `Buffer`: sent as a binary attachment.
    Bytes(Vec<u8>),
    Array(Vec<Arg>),
    /// Keys in the order received (JSON objects keep their insertion order in JS).
    Map(Vec<(String, Arg)>),
}

/// The msgpack extension type of a timestamp (notepack writes a `Date` so).
const TIMESTAMP_EXT: i8 = -1;

impl Arg {
    /// Checks a decoded msgpack value (its depth is bounded by the decoder).
    pub fn from_msgpack(value: Value) -> Result<Self, Refusal> {
        Ok(match value {
            Value::Nil => Self::Null,
            Value::Boolean(b) => Self::Bool(b),
            Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => Self::UInt(u),
                (None, Some(i)) => Self::Int(i),
                (None, None) => return Err(Refusal::Shape("an integer out of range")),
            },
            Value::F32(f) => Self::Float(f64::from(f)),
            Value::F64(f) => Self::Float(f),
            Value::String(s) => Self::Str(
                s.into_str()
                    .ok_or(Refusal::Shape("a string that is not UTF-8"))?,
            ),
            Value::Binary(b) => Self::Bytes(b),
            Value::Array(items) => Self::Array(
                items
                    .into_iter()
                    .map(Self::from_msgpack)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(pairs) => Self::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| Ok((key(k)?, Self::from_msgpack(v)?)))
                    .collect::<Result<_, Refusal>>()?,
            ),
            // A `Date`: socket.io sends it as its JSON form, an ISO 8601 string.
            Value::Ext(TIMESTAMP_EXT, data) => Self::Str(
                super::timestamp::iso8601(&data).ok_or(Refusal::Shape("a malformed timestamp"))?,
            ),
            Value::Ext(..) => return Err(Refusal::Shape("an unknown msgpack extension")),
        })
    }
}

/// A map key as JavaScript would use it: a string, or a number written out (an object's keys
/// are strings there).
fn key(value: Value) -> Result<String, Refusal> {
    match value {
        Value::String(s) => s
            .into_str()
            .ok_or(Refusal::Shape("a map key that is not UTF-8")),
        Value::Integer(i) => Ok(i.to_string()),
        _ => Err(Refusal::Shape(
            "a map key that is neither a string nor an integer",
        )),
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => ser.serialize_unit(),
            Self::Bool(b) => ser.serialize_bool(*b),
            Self::Int(i) => ser.serialize_i64(*i),
            Self::UInt(u) => ser.serialize_u64(*u),
            Self::Float(f) => ser.serialize_f64(*f),
            Self::Str(s) => ser.serialize_str(s),
            Self::Bytes(b) => ser.serialize_bytes(b),
            Self::Array(items) => {
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Map(pairs) => {
                let mut map = ser.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The arguments of one event: serialized as a tuple, which socketioxide spreads into
/// `[event, ...args]` (a `Vec` would be one array argument).
#[derive(Debug, Clone, PartialEq)]
pub struct Args(pub Vec<Arg>);

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut tuple = ser.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}
