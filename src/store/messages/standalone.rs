//! The message log on a standalone Redis: each message is one part of a `store_messages.lua`
//! call that it shares with the messages waiting with it ([`crate::store::message_batch`]).
//! The script does every write, the trims, the undo of a refused message and the
//! publications in one atomic step per message. A part names what it carries: a count of
//! name/value pairs, then the pairs (`json`, `histories`, `index`, `channel_unless_alone`,
//! ...), each pair that names keys taking the part's next ones.

use std::time::Duration;

use super::{MessageLimits, Record, Stored};
use crate::{
    routing::Publication,
    store::{
        StoreError,
        message_batch::MessageBatches,
        redis::{RedisPool, keys, scripts},
    },
};

#[derive(Clone)]
pub struct StandaloneLog {
    batches: MessageBatches,
    limits: MessageLimits,
}

impl StandaloneLog {
    /// Starts the batch task; `batch_delay`: how long a batch may wait for more messages.
    pub fn spawn(pool: RedisPool, limits: MessageLimits, batch_delay: Duration) -> Self {
        let head = [
            limits.cap.to_string(),
            limits.history_ttl.as_secs().to_string(),
            limits.contact_ttl.as_secs().to_string(),
        ]
        .map(String::into_bytes)
        .to_vec();
        let batches = MessageBatches::spawn(pool, &scripts::STORE_MESSAGES, head, batch_delay);
        Self { batches, limits }
    }

    pub fn limits(&self) -> MessageLimits {
        self.limits
    }

    /// See [`super::MessageLog::build_index`]: `index_conversation.lua`, which reads the
    /// histories of both users, atomic with the message scripts.
    pub async fn build_index(
        &self,
        pool: &RedisPool,
        key: &str,
        me: &str,
        with: &str,
    ) -> Result<(), StoreError> {
        let mut conn = pool.get().await?;
        scripts::INDEX_CONVERSATION
            .key(key)
            .key(keys::messages(me))
            .key(keys::messages(with))
            .arg(as_in_json(me))
            .arg(as_in_json(with))
            .arg(self.limits.history_ttl.as_secs())
            .arg(self.limits.cap)
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// See [`super::MessageLog::append`]: one script call, shared with the messages that wait
    /// with this one.
    pub async fn append(
        &self,
        record: &Record<'_>,
        message: &Publication,
        introduction: Option<&Publication>,
    ) -> Result<Stored, StoreError> {
        let part = Part::of(record, message, introduction)?;
        let outcome = self.batches.store(part.keys, part.args).await?;
        Ok(Stored {
            introduced: outcome == 1,
            blocked: outcome == 2,
            published: Ok(()),
        })
    }
}

/// One message's keys and arguments for `store_messages.lua`: the count of pairs, then the
/// pairs; a pair that names keys adds them to the keys, in the same order.
#[derive(Debug, PartialEq)]
struct Part {
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl Part {
    fn of(
        record: &Record<'_>,
        message: &Publication,
        introduction: Option<&Publication>,
    ) -> Result<Self, StoreError> {
        let mut part = Self {
            keys: Vec::new(),
            // The count of pairs, written last.
            args: vec![Vec::new()],
        };
        part.pair("json", record.json);
        part.pair("envelope", message.head_before(record.json)?);
        let parties = record.parties();
        part.pair("histories", parties.len().to_string());
        part.keys.extend(parties.into_iter().map(keys::messages));
        part.keyed("index", record.index_key(), record.id);
        part.channels("channel", message);
        if record.from != record.to {
            // The block check, in the message's own call (`store_messages.lua`).
            part.keyed("blocks", keys::blocks(record.to), record.from);
            part.pair("sender_channel", keys::user_channel(record.from));
        }
        for job in record.webhooks {
            let value = format!("{} {}", job.due_ms, job.member);
            part.keyed("webhook", keys::WEBHOOKS.to_owned(), &value);
        }
        if let Some(introduction) = introduction {
            let (from, to) = (record.from, record.to);
            part.keyed("sender_contacts", keys::contacts(from), to);
            part.keyed("recipient_contacts", keys::contacts(to), from);
            part.pair("introduction", introduction.payload.as_slice());
            part.channels("introduce", introduction);
        }
        part.args[0] = ((part.args.len() - 1) / 2).to_string().into_bytes();
        Ok(part)
    }

    fn pair(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.args.push(name.as_bytes().to_vec());
        self.args.push(value.into());
    }

    fn keyed(&mut self, name: &str, key: String, value: &str) {
        self.keys.push(key);
        self.pair(name, value);
    }

    /// `name` for each channel of `publication` published in any case, then
    /// `name_unless_alone` for each of those the publisher decided may be echoes only.
    fn channels(&mut self, name: &str, publication: &Publication) {
        for channel in &publication.channels {
            self.pair(name, channel.as_str());
        }
        for channel in &publication.unless_alone {
            self.pair(&format!("{name}_unless_alone"), channel.as_str());
        }
    }
}

/// A userID as a stored message's JSON spells it between its quotes, which is how
/// `index_conversation.lua` matches it: a `"` or `\\` in an ID is escaped there.
fn as_in_json(user: &str) -> String {
    let quoted = serde_json::to_string(user).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(payload: &str, channels: &[(&str, bool)]) -> Publication {
        let names = |alone: bool| {
            channels
                .iter()
                .filter(|(_, unless_alone)| *unless_alone == alone)
                .map(|(channel, _)| channel.to_string())
                .collect()
        };
        Publication {
            payload: payload.as_bytes().to_vec(),
            channels: names(false),
            unless_alone: names(true),
        }
    }

    fn text(part: &Part) -> Vec<String> {
        part.args
            .iter()
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect()
    }

    #[test]
    fn an_id_is_spelled_as_a_message_json_spells_it() {
        for user in ["auth0|x", r#"a"b"#, r"a\b", "ann@example.com", "é{x}"] {
            let json = serde_json::json!({ "from": user }).to_string();
            assert_eq!(json, format!(r#"{{"from":"{}"}}"#, as_in_json(user)));
        }
    }

    #[test]
    fn a_part_names_what_each_value_is_and_the_contacts_come_only_with_an_introduction() {
        let record = Record {
            from: "a",
            to: "b",
            id: "7",
            json: "{}",
            webhooks: &[],
        };
        let message = announcement("head|{}", &[("ch:b", false), ("ch:a", true)]);
        let part = Part::of(&record, &message, None).expect("a part");
        assert_eq!(
            text(&part),
            [
                "8",
                "json",
                "{}",
                "envelope",
                "head|",
                "histories",
                "2",
                "index",
                "7",
                "channel",
                "ch:b",
                "channel_unless_alone",
                "ch:a",
                "blocks",
                "a",
                "sender_channel",
                keys::user_channel("a").as_str(),
            ]
        );
        assert_eq!(
            part.keys,
            [
                keys::messages("a"),
                keys::messages("b"),
                keys::conversation("a", "b"),
                keys::blocks("b"),
            ]
        );

        let introduction = announcement("hello", &[("ch:b", false)]);
        let part = Part::of(&record, &message, Some(&introduction)).expect("a part");
        assert_eq!(text(&part)[0], "12");
        assert_eq!(
            text(&part)[17..],
            [
                "sender_contacts",
                "b",
                "recipient_contacts",
                "a",
                "introduction",
                "hello",
                "introduce",
                "ch:b"
            ]
        );
        assert_eq!(part.keys[4..], [keys::contacts("a"), keys::contacts("b")]);
    }
}
