//! The publisher on a standalone Redis: PUBLISH (which an operator's `PSUBSCRIBE 'socket.io*'`
//! sees), every channel of a publication in one round trip.

use super::Publication;
use crate::store::{RedisPool, StoreError, redis::scripts};

#[derive(Clone)]
pub struct StandalonePublisher {
    pool: RedisPool,
}

impl StandalonePublisher {
    pub fn new(pool: RedisPool) -> Self {
        Self { pool }
    }

    /// One pipeline of PUBLISH when no channel may be an echo; otherwise one `publish.lua`
    /// call for every channel.
    pub async fn publish(&self, publication: &Publication) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let payload = &publication.payload;
        if publication.unless_alone.is_empty() {
            let cmds = publication
                .channels
                .iter()
                .map(|channel| redis::cmd("PUBLISH").arg(channel).arg(payload).to_owned())
                .collect();
            conn.each::<redis::Value>(cmds).await?;
            return Ok(());
        }
        let mut call = scripts::PUBLISH.prepare_invoke();
        for channel in publication.unless_alone.iter().chain(&publication.channels) {
            call.key(channel);
        }
        call.arg(payload)
            .arg("PUBLISH")
            .arg(publication.unless_alone.len());
        let _published: i64 = call.invoke_async(&mut conn).await?;
        Ok(())
    }
}
