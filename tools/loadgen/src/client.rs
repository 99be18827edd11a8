//! A minimal Socket.IO v5 (Engine.IO v4) client, WebSocket transport only.
//!
//! Why hand-rolled rather than `rust_socketio` (which the tests use): the load generator must
//! never be the bottleneck. That crate parses every packet into a `serde_json::Value`, runs
//! callbacks behind locks and keeps two tasks per socket. Here a virtual user is ONE tokio task
//! owning its WebSocket: it answers pings, counts broadcasts by their prefix without parsing
//! them, hands only acks and `private message` deliveries to the tracker, and writes queued
//! frames in batches with one flush. WebSocket-only (no long-polling upgrade) is what a
//! steady-state load test needs, and any server speaking the protocol accepts it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};

use crate::tracker::Tracker;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What every connection task reports to.
pub struct Hub {
    pub tracker: Tracker,
    pub frames_in: AtomicU64,
    pub user_connected: AtomicU64,
    pub user_disconnected: AtomicU64,
    /// Connections the server (or the network) closed while we still wanted them.
    pub dropped: AtomicU64,
}

impl Hub {
    pub fn new(tracker: Tracker) -> Self {
        Self {
            tracker,
            frames_in: AtomicU64::new(0),
            user_connected: AtomicU64::new(0),
            user_disconnected: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

pub enum Auth {
    Username(String),
    Session(String),
}

/// The outcome of a handshake.
pub struct Joined {
    pub session_id: String,
    pub user_id: String,
    /// From opening the TCP connection to receiving `users`.
    pub elapsed: Duration,
    /// The raw `users` frame, kept only when asked for (restore checks it).
    pub users_frame: Option<String>,
}

/// A live connection; dropping it closes the socket.
pub struct Conn {
    tx: mpsc::UnboundedSender<Message>,
}

impl Conn {
    /// Queues a text frame; false when the connection is gone.
    pub fn send(&self, frame: String) -> bool {
        self.tx.send(Message::text(frame)).is_ok()
    }
}

/// `http://host:port` (or ws://) to the Engine.IO WebSocket endpoint.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

/// Opens a socket as user `me`, authenticates and waits for `session` and `users`; then hands
/// the socket to its own task.
pub async fn connect(
    url: &str,
    auth: &Auth,
    me: u32,
    keep_users: bool,
    hub: Arc<Hub>,
) -> Result<(Joined, Conn)> {
    let start = Instant::now();
    // Small read buffers: the hold scenario keeps tens of thousands of sockets; a big `users`
    // frame still grows the buffer as needed.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("WebSocket connection to {url}"))?;
    let auth = match auth {
        Auth::Username(name) => json!({ "username": name }),
        Auth::Session(id) => json!({ "sessionID": id }),
    };
    let mut session: Option<(String, String)> = None;
    let mut users_frame: Option<String> = None;
    let mut got_users = false;
    while session.is_none() || !got_users {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => bail!("closed during the handshake"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context("reading the handshake"),
        };
        let text = text.as_str();
        if text.starts_with('0') {
            ws.send(Message::text(format!("40{auth}"))).await?;
        } else if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if let Some(err) = text.strip_prefix("44") {
            bail!("connect_error {err}");
        } else if text == "1" || text.starts_with("41") {
            bail!("disconnected by the server during the handshake");
        } else if text.starts_with("42[\"session\"") {
            session = Some(parse_session(text)?);
        } else if text.starts_with("42[\"users\"") {
            got_users = true;
            if keep_users {
                users_frame = Some(text.to_owned());
            }
        } else {
            count_broadcast(&hub, text);
        }
    }
    let elapsed = start.elapsed();
    let (session_id, user_id) = session.context("no session event")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(ws, rx, me, hub));
    let joined = Joined {
        session_id,
        user_id,
        elapsed,
        users_frame,
    };
    Ok((joined, Conn { tx }))
}

fn parse_session(text: &str) -> Result<(String, String)> {
    let value: Value = serde_json::from_str(&text[2..]).context("session event")?;
    let field = |name: &str| value[1][name].as_str().map(str::to_owned);
    match (field("sessionID"), field("userID")) {
        (Some(s), Some(u)) => Ok((s, u)),
        _ => bail!("session event without sessionID/userID: {text}"),
    }
}

fn count_broadcast(hub: &Hub, text: &str) {
    if text.starts_with("42[\"user connected\"") {
        hub.user_connected.fetch_add(1, Relaxed);
    } else if text.starts_with("42[\"user disconnected\"") {
        hub.user_disconnected.fetch_add(1, Relaxed);
    }
}

/// The life of a connected user: write what the phases queue, answer pings, report acks and
/// deliveries. Ends when the `Conn` is dropped (closing politely) or the server closes.
async fn run(mut ws: Ws, mut rx: mpsc::UnboundedReceiver<Message>, me: u32, hub: Arc<Hub>) {
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(first) = out else {
                    ws.close(None).await.ok();
                    return;
                };
                // Batch whatever is queued into one flush (one write syscall, typically).
                let mut batch = Some(first);
                let mut n = 0;
                while let Some(msg) = batch.take() {
                    if ws.feed(msg).await.is_err() {
                        break;
                    }
                    n += 1;
                    if n < 256 {
                        batch = rx.try_recv().ok();
                    }
                }
                if ws.flush().await.is_err() {
                    break;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if !on_frame(&hub, me, text.as_str()) {
                        break;
                    }
                    if text.as_str() == "2" && ws.send(Message::text("3")).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
    hub.dropped.fetch_add(1, Relaxed);
}

/// Handles one frame; false when the server ended the session.
fn on_frame(hub: &Hub, me: u32, text: &str) -> bool {
    hub.frames_in.fetch_add(1, Relaxed);
    if text.starts_with("42") {
        if !hub.tracker.on_delivery(me, text) {
            count_broadcast(hub, text);
        }
    } else if text.starts_with("43") {
        hub.tracker.on_ack(text);
    } else if text == "1" || text.starts_with("41") {
        return false; // Engine.IO close or Socket.IO disconnect
    }
    true
}
