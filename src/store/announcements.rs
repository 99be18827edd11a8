//! Publications on users' channels: one payload for several users (a message for both its
//! users, a contact's presence for each contact), and the one verb that publishes them, so that
//! every event skips the channels only its own node would hear (see [`Target::held_here`]).
//! The message script applies the same rule in the call that stores the message.

use super::{
    StoreError,
    redis::{Publication, RedisKind, RedisPool, scripts},
};

/// What to publish: one payload, on each of these channels.
#[derive(Clone)]
pub struct Announcement {
    pub payload: Vec<u8>,
    pub channels: Vec<Target>,
}

/// A channel to publish on, and whether this node itself receives it.
#[derive(Clone)]
pub struct Target {
    pub channel: String,
    /// This node holds the channel's user (its subscription confirmed): a channel that has no
    /// other subscriber is skipped, since this node delivered to its own
    /// sockets already and the publication would only come back to it as its echo.
    pub held_here: bool,
}

impl Announcement {
    /// One character per channel, `1` where this node holds it: how `publish_announcement.lua`
    /// reads it.
    pub fn held_flags(&self) -> String {
        self.channels
            .iter()
            .map(|target| if target.held_here { '1' } else { '0' })
            .collect()
    }

    /// The channels' names, as script arguments.
    pub fn channel_names(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.channels
            .iter()
            .map(|target| target.channel.as_bytes().to_vec())
    }

    /// The payload up to `data`, which it ends with (an envelope of the message's JSON): the
    /// message script gets only this and append the JSON they store, so that it crosses the
    /// wire once (the whole payload was a third of each message's bytes in the call).
    pub fn head_before(&self, data: &str) -> Result<Vec<u8>, StoreError> {
        self.payload
            .strip_suffix(data.as_bytes())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StoreError::Refused("the envelope does not carry the message".into()))
    }

    /// Each channel with the payload, for [`crate::store::Conn::publish_each`].
    pub fn publications(&self) -> Vec<Publication<'_>> {
        self.channels
            .iter()
            .map(|target| Publication {
                channel: &target.channel,
                payload: &self.payload,
                held_here: target.held_here,
            })
            .collect()
    }
}

/// Publishes announcements that follow no write of their own (typing, read marks, presence).
#[derive(Clone)]
pub struct Announcer {
    pool: RedisPool,
    /// How an announcement that this node hears itself skips its echoes, chosen from the
    /// pool's kind when built.
    echoes: EchoSkip,
}

/// The two ways to skip the channels whose only subscriber is this node. Both ask Redis how
/// many subscribe, in the call that publishes, so that a subscriber elsewhere is never missed.
#[derive(Clone, Copy)]
enum EchoSkip {
    /// A standalone Redis: one script call for every channel
    /// (`redis-scripts/publish_announcement.lua`), one round trip whatever their number.
    OneScript,
    /// A Redis Cluster: a sharded channel lives on the master of its slot, so each channel is
    /// published in a call of its own ([`crate::store::Conn::publish_each`]).
    EachChannel,
}

impl Announcer {
    pub fn new(pool: RedisPool) -> Self {
        let echoes = match pool.kind() {
            RedisKind::Standalone => EchoSkip::OneScript,
            RedisKind::Cluster => EchoSkip::EachChannel,
        };
        Self { pool, echoes }
    }

    /// Publishes `announce` on each of its channels that some other node may hear.
    pub async fn publish(&self, announce: &Announcement) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        // With none of the users on this node there is no echo to skip: plain publications.
        let held_here = announce.channels.iter().any(|target| target.held_here);
        if matches!(self.echoes, EchoSkip::EachChannel) || !held_here {
            return conn.publish_each(&announce.publications()).await;
        }
        let mut call = scripts::PUBLISH_ANNOUNCEMENT.prepare_invoke();
        call.arg(&announce.payload).arg(announce.held_flags());
        for channel in announce.channel_names() {
            call.arg(channel);
        }
        let _published: i64 = call.invoke_async(&mut conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Envelope;

    fn announcement(payload: Vec<u8>) -> Announcement {
        Announcement {
            payload,
            channels: Vec::new(),
        }
    }

    #[test]
    fn the_scripts_get_the_envelope_without_the_json_they_already_have() {
        let json = r#"{"content":"a|b","from":"x","to":"y"}"#;
        let message = announcement(Envelope::encode("node1", "private message", json));
        let head = message
            .head_before(json)
            .expect("an envelope of the message");
        assert_eq!(head, b"node1|private message|");
        assert_eq!([head.as_slice(), json.as_bytes()].concat(), message.payload);
        assert!(
            message.head_before(r#"{"content":"other"}"#).is_err(),
            "a payload that does not end with the message"
        );
    }
}
