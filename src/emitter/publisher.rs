//! Sends what `@socket.io/redis-emitter` sends, in its format and on its channels (a plain
//! PUBLISH, on a cluster too), so that the server's own API reaches a user's sockets by the
//! very path a backend's emitter takes.

use rmpv::Value;

use crate::store::{
    StoreError,
    redis::{RedisPool, keys},
};

/// The emitter's `uid`: the reference adapter ignores only packets carrying its own.
const UID: &str = "emitter";
/// Socket.IO's EVENT packet type.
const EVENT: u8 = 2;

#[derive(Clone)]
pub struct EmitterPublisher {
    pool: RedisPool,
}

impl EmitterPublisher {
    pub fn new(pool: RedisPool) -> Self {
        Self { pool }
    }

    /// `emitter.to(user).emit(event, data)`: every socket of `user`, on every node.
    pub async fn emit_to_user(
        &self,
        user: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let payload = emit_packet(user, event, data)?;
        self.publish(&keys::emitter_room_channel(user), payload)
            .await
    }

    /// `emitter.in(user).disconnectSockets(true)`: every socket of `user`, on every node, is
    /// closed by the server (its client sees `io server disconnect`).
    pub async fn disconnect_user(&self, user: &str) -> Result<(), StoreError> {
        let request = serde_json::json!({
            "type": 4,
            "opts": { "rooms": [user], "except": [] },
            "close": true,
        });
        let payload = serde_json::to_vec(&request)?;
        self.publish(keys::EMITTER_REQUEST_CHANNEL, payload).await
    }

    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg(payload);
        let call = publish.query_async::<()>(&mut conn);
        self.pool
            .metrics()
            .time_redis("PUBLISH".into(), call)
            .await?;
        Ok(())
    }
}

/// `[uid, { type, data: [event, data], nsp }, { rooms: [user], flags: {}, except: [] }]`.
fn emit_packet(user: &str, event: &str, data: &serde_json::Value) -> Result<Vec<u8>, StoreError> {
    let packet = Value::Map(vec![
        ("type".into(), EVENT.into()),
        (
            "data".into(),
            Value::Array(vec![event.into(), msgpack(data)]),
        ),
        ("nsp".into(), "/".into()),
    ]);
    let opts = Value::Map(vec![
        ("rooms".into(), Value::Array(vec![user.into()])),
        ("flags".into(), Value::Map(Vec::new())),
        ("except".into(), Value::Array(Vec::new())),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &Value::Array(vec![UID.into(), packet, opts]))
        .map_err(|err| StoreError::Refused(format!("cannot encode the packet: {err}")))?;
    Ok(out)
}

/// A JSON value as msgpack, as notepack encodes the same JavaScript value.
fn msgpack(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into(),
            (None, Some(i), _) => i.into(),
            (None, None, Some(f)) => Value::F64(f),
            (None, None, None) => Value::Nil,
        },
        Json::String(s) => s.as_str().into(),
        Json::Array(items) => Value::Array(items.iter().map(msgpack).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), msgpack(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::emit_packet;
    use crate::emitter::{
        args::{Arg, Args},
        packet,
    };

    #[test]
    fn what_the_publisher_sends_is_what_the_receiver_reads_as_an_emitters_packet() {
        let data = json!({ "hello": [1, -2, 2.5, null, true, "x"] });
        let payload = emit_packet("auth0|5f7c", "notice", &data).expect("encodes");
        let read = packet::broadcast(&payload, 1 << 20).expect("decodes");
        assert_eq!(read.event, "notice");
        assert_eq!(read.rooms, vec!["auth0|5f7c".to_owned()]);
        assert!(read.except.is_empty());
        assert_eq!(
            read.args,
            Args(vec![Arg::Map(vec![(
                "hello".into(),
                Arg::Array(vec![
                    Arg::UInt(1),
                    Arg::Int(-2),
                    Arg::Float(2.5),
                    Arg::Null,
                    Arg::Bool(true),
                    Arg::Str("x".into()),
                ])
            )])])
        );
    }
}
