//! The publisher on a Redis Cluster: sharded pub/sub, SPUBLISH, each channel on the master
//! that owns its slot, all of a publication's channels at once.

use futures_util::future::try_join_all;

use super::Publication;
use crate::store::{
    RedisPool, StoreError,
    redis::{Conn, scripts},
};

#[derive(Clone)]
pub struct ClusterPublisher {
    pool: RedisPool,
}

impl ClusterPublisher {
    pub fn new(pool: RedisPool) -> Self {
        Self { pool }
    }

    pub async fn publish(&self, publication: &Publication) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        publish(&conn, publication).await
    }
}

/// Publishes `publication` on `conn`, a cluster connection (the cluster message log publishes
/// this way once a message is stored): SPUBLISH on each channel nobody on this node hears, a
/// `publish.lua` call on each of the others, concurrently.
pub async fn publish(conn: &Conn, publication: &Publication) -> Result<(), StoreError> {
    let payload = &publication.payload;
    let unless_alone = publication
        .unless_alone
        .iter()
        .map(|channel| (channel, true));
    let plain = publication.channels.iter().map(|channel| (channel, false));
    let calls = unless_alone.chain(plain).map(|(channel, unless_alone)| {
        let mut conn = conn.clone();
        async move {
            if unless_alone {
                let mut call = scripts::PUBLISH.key(channel);
                call.arg(payload).arg("SPUBLISH").arg(1);
                call.invoke_async::<i64>(&mut conn).await?;
            } else {
                redis::cmd("SPUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async::<redis::Value>(&mut conn)
                    .await?;
            }
            Ok::<_, StoreError>(())
        }
    });
    try_join_all(calls).await?;
    Ok(())
}
