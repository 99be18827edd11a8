//! One session listing shared by every user connecting at the same moment.
//!
//! Each connection needs the whole user list; during a connect storm with thousands of stored
//! sessions, listing once per connection would multiply the same SCAN + HMGET work. A listing
//! that STARTED after a user's own session write was acknowledged necessarily contains that
//! write (and every other write acknowledged before it started), so that user may share it.
//! Nothing older is ever served.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};

use super::{SessionStore, StoreError, UserEntry};

type Listing = Shared<BoxFuture<'static, Result<Arc<Vec<UserEntry>>, Arc<StoreError>>>>;

#[derive(Clone)]
pub struct SharedListing {
    sessions: SessionStore,
    /// The most recent listing and when it started.
    latest: Arc<Mutex<Option<(Instant, Listing)>>>,
}

impl SharedListing {
    pub fn new(sessions: SessionStore) -> Self {
        Self {
            sessions,
            latest: Arc::default(),
        }
    }

    /// Every stored user, as of no earlier than `written` (when the caller's own write was
    /// acknowledged): joins the latest listing if it started after that, else starts one.
    pub async fn list_after(
        &self,
        written: Instant,
    ) -> Result<Arc<Vec<UserEntry>>, Arc<StoreError>> {
        let listing = {
            let mut latest = self
                .latest
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            match latest.as_ref() {
                Some((started, listing)) if *started >= written => listing.clone(),
                _ => {
                    let sessions = self.sessions.clone();
                    let started = Instant::now();
                    let listing =
                        async move { sessions.list().await.map(Arc::new).map_err(Arc::new) }
                            .boxed()
                            .shared();
                    *latest = Some((started, listing.clone()));
                    listing
                }
            }
        };
        listing.await
    }
}
