//! The one way a test waits: poll a condition until a deadline. Never a fixed sleep: a fixed
//! sleep is too short on a loaded machine and wastes time on an idle one.

use std::{fmt::Debug, time::Duration};

use tokio::time::Instant;

use super::WAIT;

/// How often a condition is checked again.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// What a check returns: `true`, `Some(value)` or `Ok(value)` when the condition holds;
/// `false`, `None` or `Err(state)` to be asked again (the last `Err` is shown on timeout).
pub trait Outcome {
    type Value;
    fn settled(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn settled(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn settled(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Outcome for Result<T, E> {
    type Value = T;
    fn settled(self) -> Result<T, Option<String>> {
        self.map_err(|state| Some(format!("{state:?}")))
    }
}

/// Waits up to [`WAIT`] for `check` to hold; panics with `what` after that.
pub async fn eventually<R: Outcome>(check: impl AsyncFnMut() -> R, what: &str) -> R::Value {
    eventually_within(WAIT, check, what).await
}

/// Waits up to `within` for `check` to hold; panics with `what` after that.
pub async fn eventually_within<R: Outcome>(
    within: Duration,
    check: impl AsyncFnMut() -> R,
    what: &str,
) -> R::Value {
    match poll(within, check).await {
        Ok(value) => value,
        Err(Some(last)) => panic!("gave up after {within:?} waiting for {what}; last: {last}"),
        Err(None) => panic!("gave up after {within:?} waiting for {what}"),
    }
}

/// Checks `check` every [`POLL_EVERY`] until it holds or `within` has passed. A check still
/// running at the deadline is cancelled, so the deadline holds even if Redis or a node hangs.
/// For helpers that try again on failure (a port taken meanwhile); tests use [`eventually`].
pub async fn poll<R: Outcome>(
    within: Duration,
    mut check: impl AsyncFnMut() -> R,
) -> Result<R::Value, Option<String>> {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(outcome) => match outcome.settled() {
                Ok(value) => return Ok(value),
                Err(state) => last = state.or(last),
            },
            Err(_) => return Err(last),
        }
        if Instant::now() + POLL_EVERY >= deadline {
            return Err(last);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{eventually, eventually_within};

    #[tokio::test]
    async fn eventually_returns_what_the_check_found_once_it_holds() {
        let mut calls = 0;
        let found = eventually(
            async || {
                calls += 1;
                (calls == 3).then_some(calls)
            },
            "the third call",
        )
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a condition that never holds; last: 42")]
    async fn eventually_gives_up_at_the_deadline_with_what_it_waited_for() {
        eventually_within(
            Duration::from_millis(100),
            async || Err::<(), _>(42),
            "a condition that never holds",
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "gave up after 100ms")]
    async fn a_check_that_hangs_does_not_outlive_the_deadline() {
        eventually_within(
            Duration::from_millis(100),
            async || std::future::pending::<bool>().await,
            "a check that never answers",
        )
        .await;
    }
}
