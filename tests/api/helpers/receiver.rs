//! A real HTTP webhook receiver on port 0 (axum): records every request it gets (headers and
//! raw body, before it answers), then answers 200, or 500 to the first few, or never answers
//! the first few (a hanging endpoint).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode};
use tokio::{net::TcpListener, task::JoinHandle};

use super::wait::eventually_within;

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    /// How many of the next requests get a 500.
    failing: AtomicUsize,
    /// How many of the next requests get no answer at all.
    hanging: AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let received = Received {
        headers,
        body: body.to_vec(),
    };
    inner.received.lock().expect("not poisoned").push(received);
    let take = |counter: &AtomicUsize| {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    };
    if take(&inner.hanging) {
        std::future::pending::<()>().await;
    }
    if take(&inner.failing) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(receive).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            inner,
            task,
        }
    }

    /// The next `count` requests are answered 500.
    pub fn fail_next(&self, count: usize) {
        self.inner.failing.store(count, Ordering::SeqCst);
    }

    /// The next `count` requests are never answered.
    pub fn hang_next(&self, count: usize) {
        self.inner.hanging.store(count, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("not poisoned").clone()
    }

    /// Waits up to `within` until at least `count` requests came; returns them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        eventually_within(
            within,
            async || {
                let received = self.received();
                (received.len() >= count).then_some(received)
            },
            &format!("{count} webhook request(s)"),
        )
        .await
    }
}
