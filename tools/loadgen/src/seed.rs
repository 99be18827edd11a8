//! `--seed-sessions K`: stored sessions written straight into Redis, as the Node server writes
//! them (PROTOCOL.md: `session:{sessionID}` hash with `userID`, `username`, `connected`, 24 h
//! TTL), so that `users` has K offline entries to list, as in a long-running deployment.

use anyhow::{Context, Result};
use indicatif::ProgressBar;

/// Sessions per pipeline: large enough to amortise round trips, small enough to keep Redis
/// responsive for the servers meanwhile.
const CHUNK: usize = 1_000;
const TTL_SECS: i64 = 86_400;

pub async fn seed_sessions(redis_url: &str, count: usize, run: u32) -> Result<()> {
    let client = redis::Client::open(redis_url).context("REDIS url")?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to {redis_url}"))?;
    let bar = ProgressBar::new(count as u64).with_message("seeding sessions");
    let mut written = 0;
    while written < count {
        let n = CHUNK.min(count - written);
        let mut pipe = redis::pipe();
        for i in written..written + n {
            let key = format!("session:{}", uuid::Uuid::new_v4());
            // The Node server's userIDs: 8 random bytes in hex.
            let user_id = format!("{:016x}", fastrand::u64(..));
            let username = format!("seed{run:08x}-{i}");
            pipe.hset_multiple(
                &key,
                &[
                    ("userID", user_id.as_str()),
                    ("username", username.as_str()),
                    ("connected", "false"),
                ],
            )
            .ignore()
            .expire(&key, TTL_SECS)
            .ignore();
        }
        pipe.query_async::<()>(&mut con)
            .await
            .context("seeding sessions")?;
        written += n;
        bar.set_position(written as u64);
    }
    bar.finish_and_clear();
    Ok(())
}
