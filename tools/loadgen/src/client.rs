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
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};

use crate::{
    protocol::{self, Auth, Packet},
    requests::Requests,
    tracker::Tracker,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What every connection task reports to.
pub struct Hub {
    pub tracker: Tracker,
    /// Acks of `search users` and of the messages that make contacts.
    pub requests: Requests,
    pub frames_in: AtomicU64,
    pub user_connected: AtomicU64,
    pub user_disconnected: AtomicU64,
    /// Events of no phase of ours (e.g. what a backend's emitter sends beside the run).
    pub other_events: AtomicU64,
    /// Connections the server (or the network) closed while we still wanted them.
    pub dropped: AtomicU64,
    /// Request acks nobody waited for any more (after their timeout) or answered twice.
    pub late_answers: AtomicU64,
}

impl Hub {
    pub fn new(tracker: Tracker) -> Self {
        Self {
            tracker,
            requests: Requests::default(),
            frames_in: AtomicU64::new(0),
            user_connected: AtomicU64::new(0),
            user_disconnected: AtomicU64::new(0),
            other_events: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            late_answers: AtomicU64::new(0),
        }
    }
}

/// The outcome of a handshake.
pub struct Joined {
    pub session_id: String,
    pub user_id: String,
    /// From opening the TCP connection to receiving `users`.
    pub elapsed: Duration,
    /// Size of the `users` event: its entries and its frame's bytes.
    pub users_entries: usize,
    pub users_bytes: usize,
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
    // Frames up to 512 MiB: in the `all` scope `users` is ~90 bytes per stored user, over
    // tungstenite's 16 MiB default frame limit past ~180,000 users.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_frame_size(Some(512 << 20))
        .max_message_size(Some(512 << 20));
    let (mut ws, _) = connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("WebSocket connection to {url}"))?;
    let mut session: Option<(String, String)> = None;
    let mut users_frame: Option<String> = None;
    let mut got_users = false;
    let (mut users_entries, mut users_bytes) = (0, 0);
    // When `session` and `users` arrived: the join ends at the later one, before the load
    // generator spends anything on what it received.
    let mut arrived = start;
    while session.is_none() || !got_users {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => bail!("closed during the handshake"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context("reading the handshake"),
        };
        let text = text.as_str();
        match protocol::parse(text) {
            Packet::Open => {
                ws.send(Message::text(protocol::connect_frame(auth)))
                    .await?
            }
            Packet::Ping => ws.send(Message::text("3")).await?,
            Packet::ConnectError(err) => bail!("connect_error {err}"),
            Packet::Closed => bail!("disconnected by the server during the handshake"),
            Packet::Event {
                name: Some("session"),
            } => {
                arrived = arrived.max(Instant::now());
                session = Some(protocol::parse_session(text)?);
            }
            Packet::Event {
                name: Some("users"),
            } => {
                arrived = arrived.max(Instant::now());
                got_users = true;
                users_bytes = text.len();
                users_entries = protocol::users_entries(text);
                if keep_users {
                    users_frame = Some(text.to_owned());
                }
            }
            Packet::Event { name } => count_broadcast(&hub, name),
            Packet::Connected | Packet::Ack { .. } | Packet::Other => {}
        }
    }
    let elapsed = arrived.duration_since(start);
    let (session_id, user_id) = session.context("no session event")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(ws, rx, me, hub));
    let joined = Joined {
        session_id,
        user_id,
        elapsed,
        users_entries,
        users_bytes,
        users_frame,
    };
    Ok((joined, Conn { tx }))
}

fn count_broadcast(hub: &Hub, event: Option<&str>) {
    match event {
        Some("user connected") => hub.user_connected.fetch_add(1, Relaxed),
        Some("user disconnected") => hub.user_disconnected.fetch_add(1, Relaxed),
        Some("session" | "users") | None => 0,
        Some(_) => hub.other_events.fetch_add(1, Relaxed),
    };
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
                Some(Ok(Message::Text(text))) => match on_frame(&hub, me, text.as_str()) {
                    Reply::Nothing => {}
                    Reply::Pong => {
                        if ws.send(Message::text("3")).await.is_err() {
                            break;
                        }
                    }
                    Reply::Stop => break,
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
    hub.dropped.fetch_add(1, Relaxed);
}

/// What the connection task does after a frame.
enum Reply {
    Nothing,
    Pong,
    /// The server ended the session.
    Stop,
}

/// Hands acks and deliveries to the tracker and counts broadcasts.
fn on_frame(hub: &Hub, me: u32, text: &str) -> Reply {
    hub.frames_in.fetch_add(1, Relaxed);
    match protocol::parse(text) {
        Packet::Event {
            name: Some("private message"),
        } => {
            hub.tracker.on_delivery(me, text);
        }
        Packet::Event { name } => count_broadcast(hub, name),
        Packet::Ack {
            id: Some(id),
            payload,
        } if Requests::is_request(id) => {
            if !hub.requests.answer(id, payload) {
                hub.late_answers.fetch_add(1, Relaxed);
            }
        }
        Packet::Ack { id, payload } => hub.tracker.on_ack(id, payload),
        Packet::Ping => return Reply::Pong,
        Packet::Closed => return Reply::Stop,
        Packet::Open | Packet::Connected | Packet::ConnectError(_) | Packet::Other => {}
    }
    Reply::Nothing
}
