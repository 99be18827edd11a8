//! The floor under the server's CPU per message: what socketioxide, engineioxide, tungstenite
//! and tokio cost for the socket work of a private message, with nothing of ours around it.
//!
//! It speaks just enough of the protocol for the load generator's `message` phase: a
//! `{ username }` handshake answered with `session` and a one-entry `users`; `private message`
//! `{ content, to }` delivered to the recipient's sockets and the sender's other tabs (rooms of
//! socketioxide's in-memory adapter: one node, no Redis, nothing stored, nothing checked) and
//! acknowledged with `{ message }`. It is not a server: no session is kept, any payload that is
//! not such an object is dropped. `benches/floor.sh` runs it beside the server, same load, same
//! round. Reads PORT (default 3000), WORKER_THREADS (as the server: 0 a thread per CPU, 1
//! one thread) and SERVER_MEMORY (1: the server's per-connection memory settings, for the
//! floor under its RSS per idle connection, `benches/memory-floor.sh`).

use axum::{Router, routing::get, serve::ListenerExt};
use mimalloc::MiMalloc;
use serde::{Deserialize, Serialize};
use socketioxide::{
    SocketIo,
    extract::{AckSender, Data, Extension, SocketRef},
};
use uuid::Uuid;

// The server's allocator, so that the two are compared on the same one.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Deserialize)]
struct Auth {
    username: String,
}

#[derive(Deserialize)]
struct Outgoing {
    content: String,
    to: String,
}

#[derive(Serialize)]
struct Message<'a> {
    content: &'a str,
    from: &'a str,
    to: &'a str,
}

#[derive(Clone)]
struct UserId(String);

async fn on_connect(socket: SocketRef, Data(auth): Data<Auth>) {
    let user = Uuid::now_v7().to_string();
    socket.join(user.clone());
    let session = serde_json::json!({
        "sessionID": Uuid::new_v4().to_string(),
        "userID": user,
        "username": auth.username,
    });
    let users = serde_json::json!([{
        "userID": user, "username": auth.username, "connected": true, "messages": [],
    }]);
    // A socket gone before its first events is no concern of a benchmark.
    socket.emit("session", &session).ok();
    socket.emit("users", &users).ok();
    socket.extensions.insert(UserId(user));
    socket.on("private message", on_private_message);
}

async fn on_private_message(
    socket: SocketRef,
    Data(message): Data<Outgoing>,
    Extension(UserId(from)): Extension<UserId>,
    ack: AckSender,
) {
    let message = Message {
        content: &message.content,
        from: &from,
        to: &message.to,
    };
    // Delivery to a full or closed socket is dropped, as the server counts and drops it.
    socket
        .to(message.to.to_owned())
        .to(from.clone())
        .emit("private message", &message)
        .await
        .ok();
    ack.send(&serde_json::json!({ "message": message })).ok();
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let threads: usize = std::env::var("WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let mut runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        runtime.worker_threads(threads);
    }
    // SERVER_MEMORY=1: the two per-connection memory settings the server applies to the
    // stack (1 KiB WebSocket read buffer, the request head detached from hyper's read
    // buffer), so that an idle connection's RSS here is the floor under the server's.
    let server_memory = std::env::var("SERVER_MEMORY").is_ok_and(|v| v == "1");
    runtime
        .enable_all()
        .build()?
        .block_on(serve(port, server_memory))
}

async fn serve(port: u16, server_memory: bool) -> std::io::Result<()> {
    let mut engine = SocketIo::builder();
    if server_memory {
        engine = engine.ws_read_buffer_size(privmsg::startup::WS_READ_BUFFER);
    }
    let (layer, io) = engine.build_layer();
    io.ns("/", on_connect);
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer);
    if server_memory {
        app = app.layer(axum::middleware::from_fn(privmsg::http::detach_head));
    }
    // TCP_NODELAY as the server sets it: without it a frame written right after another waits
    // for the peer's delayed ACK, and fewer, larger segments would flatter the floor.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            tcp.set_nodelay(true).ok();
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
}
