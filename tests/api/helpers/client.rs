//! A real Socket.IO client (the `rust_socketio` crate) that records every event it receives,
//! so a test can wait for one, or make sure one never comes.

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::{
    Event, Payload, TransportType,
    asynchronous::{Client, ClientBuilder},
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Server, WAIT, identity};

pub struct TestClient {
    client: Client,
    /// Held while an acknowledged emit waits for its ack. rust_socketio 0.6 draws ack ids at
    /// random from 0..999 and matches acks by id alone: two acks in flight on one client can
    /// share an id, and then one ack goes to both callbacks, the other never arrives, and the
    /// client's task panics removing them ("removal index should be < len").
    one_ack_at_a_time: Mutex<()>,
    events: mpsc::UnboundedReceiver<(String, Value)>,
    /// Events received while waiting for another one, in arrival order.
    backlog: Vec<(String, Value)>,
    /// Everything received so far, for tests that search it.
    pub seen: Vec<(String, Value)>,
}

/// A client whose handshake was accepted, with what the server told it first.
pub struct Connected {
    pub client: TestClient,
    pub session_id: String,
    pub user_id: String,
    pub users: Value,
}

impl Connected {
    /// Sends `content` to `to` (a userID) and returns the acknowledgement.
    pub async fn send_to(&self, to: &str, content: &str) -> Value {
        self.client
            .send(json!({ "content": content, "to": to }))
            .await
    }

    /// `delete message` of message `id` in the conversation with `with`: its ack.
    pub async fn delete_message(&self, with: &str, id: impl serde::Serialize) -> Value {
        let payload = json!({ "with": with, "id": id });
        self.client.ask("delete message", payload).await
    }

    /// `edit message`: message `id` of the conversation with `with` gets `content`; its ack.
    pub async fn edit_message(
        &self,
        with: &str,
        id: impl serde::Serialize,
        content: &str,
    ) -> Value {
        let payload = json!({ "with": with, "id": id, "content": content });
        self.client.ask("edit message", payload).await
    }

    /// The entry of `user_id` in the `users` this client was given on joining.
    pub fn listed(&self, user_id: &str) -> &Value {
        self.users
            .as_array()
            .expect("users is an array")
            .iter()
            .find(|user| user["userID"] == user_id)
            .unwrap_or_else(|| panic!("{user_id} missing from users: {}", self.users))
    }
}

impl TestClient {
    /// Opens a WebSocket connection with `auth`; never reconnects on its own.
    pub async fn connect(app: &impl Server, auth: Value) -> Self {
        Self::connect_with(app, auth, TransportType::Websocket).await
    }

    pub async fn connect_with(app: &impl Server, auth: Value, transport: TransportType) -> Self {
        Self::connect_url(app.url(), auth, transport).await
    }

    /// Connects to any Socket.IO server address, such as a proxy in front of the nodes.
    pub async fn connect_url(url: String, auth: Value, transport: TransportType) -> Self {
        Self::connect_with_headers(url, auth, transport, &[]).await
    }

    /// Connects with extra HTTP `headers` on the opening request (`X-Forwarded-For`...).
    pub async fn connect_with_headers(
        url: String,
        auth: Value,
        transport: TransportType,
        headers: &[(&str, &str)],
    ) -> Self {
        let (auth, _) = identity::auth_for_mode(auth);
        let (tx, events) = mpsc::unbounded_channel();
        let on_error = tx.clone();
        let on_close = tx.clone();
        let builder = headers
            .iter()
            .fold(ClientBuilder::new(url), |builder, &(name, value)| {
                builder.opening_header(name, value)
            });
        let client = builder
            .auth(auth)
            .transport_type(transport)
            .reconnect(false)
            .on_any(move |event: Event, payload: Payload, _| {
                let _ = tx.send((event.as_str().to_owned(), first_value(payload)));
                async {}.boxed()
            })
            .on(Event::Error, move |payload: Payload, _| {
                let _ = on_error.send(("error".to_owned(), first_value(payload)));
                async {}.boxed()
            })
            .on(Event::Close, move |_, _| {
                let _ = on_close.send(("close".to_owned(), Value::Null));
                async {}.boxed()
            })
            .connect()
            .await
            .expect("transport connects");
        Self {
            client,
            one_ack_at_a_time: Mutex::new(()),
            events,
            backlog: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Connects as a new user named `username` and reads `session` and `users`.
    pub async fn join(app: &impl Server, username: &str) -> Connected {
        Self::join_with(app, json!({ "username": username })).await
    }

    /// Connects with `auth` and reads `session` and `users`.
    pub async fn join_with(app: &impl Server, auth: Value) -> Connected {
        Self::join_url(app.url(), auth, TransportType::Websocket).await
    }

    /// Connects to any Socket.IO address with `auth` and reads `session` and `users`.
    pub async fn join_url(url: String, auth: Value, transport: TransportType) -> Connected {
        Self::join_with_headers(url, auth, transport, &[]).await
    }

    /// Like [`TestClient::join_url`], with extra HTTP `headers` on the opening request.
    pub async fn join_with_headers(
        url: String,
        auth: Value,
        transport: TransportType,
        headers: &[(&str, &str)],
    ) -> Connected {
        let (auth, token) = identity::auth_for_mode(auth);
        let mut client = Self::connect_with_headers(url, auth, transport, headers).await;
        let session = client.expect("session").await;
        let users = client.expect("users").await;
        let session_id = session["sessionID"].as_str().unwrap_or_default();
        identity::remember(session_id, token);
        Connected {
            session_id: session["sessionID"].as_str().expect("sessionID").to_owned(),
            user_id: session["userID"].as_str().expect("userID").to_owned(),
            users,
            client,
        }
    }

    /// Waits for the next `event` (up to [`WAIT`]); other events are kept for later.
    pub async fn expect(&mut self, event: &str) -> Value {
        self.expect_within(event, WAIT).await
    }

    /// Waits for the next `event` up to `wait`, for events that take longer than [`WAIT`].
    pub async fn expect_within(&mut self, event: &str, wait: Duration) -> Value {
        match self.wait_for(event, wait).await {
            Some(payload) => payload,
            None => panic!("no {event:?} within {wait:?}; got {:?}", self.backlog),
        }
    }

    /// Waits for `marker`, an event that must come after any `unwanted` one, and asserts that
    /// no `unwanted` came before it: a check that something did not happen waits for proof,
    /// not for a quiet moment. Returns the marker's payload.
    pub async fn expect_none_before(&mut self, unwanted: &str, marker: &str) -> Value {
        let payload = self.expect(marker).await;
        if let Some((_, early)) = self.backlog.iter().find(|(name, _)| name == unwanted) {
            panic!("unexpected {unwanted:?} before {marker:?}: {early}");
        }
        payload
    }

    /// The next `event` if it comes within `wait`.
    pub async fn wait_for_within(&mut self, event: &str, wait: Duration) -> Option<Value> {
        self.wait_for(event, wait).await
    }

    async fn wait_for(&mut self, event: &str, wait: Duration) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(|(name, _)| name == event) {
            return Some(self.backlog.remove(i).1);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some((name, payload))) =
            tokio::time::timeout_at(deadline, self.events.recv()).await
        {
            self.seen.push((name.clone(), payload.clone()));
            if name == event {
                return Some(payload);
            }
            self.backlog.push((name, payload));
        }
        None
    }

    /// Whether the connection was closed or failed (`close` or `error`) at any point so far.
    pub fn was_dropped(&mut self) -> bool {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event.clone());
            self.backlog.push(event);
        }
        self.seen
            .iter()
            .any(|(name, _)| name == "close" || name == "error")
    }

    /// Emits `private message` with an acknowledgement callback; returns the acknowledgement.
    pub async fn send(&self, payload: Value) -> Value {
        self.send_raw(Payload::Text(vec![payload])).await
    }

    pub async fn send_raw(&self, payload: Payload) -> Value {
        self.try_send_raw(payload)
            .await
            .expect("acknowledged in time")
    }

    /// Like [`TestClient::send`], but `None` when the connection is gone or no ack came: for
    /// tests where the server may legitimately be going away.
    pub async fn try_send(&self, payload: Value) -> Option<Value> {
        self.try_send_raw(Payload::Text(vec![payload])).await
    }

    async fn try_send_raw(&self, payload: Payload) -> Option<Value> {
        self.try_ask("private message", payload).await
    }

    /// Emits `event` with an acknowledgement callback (e.g. `search users`); returns the ack.
    pub async fn ask(&self, event: &str, payload: Value) -> Value {
        self.try_ask(event, Payload::Text(vec![payload]))
            .await
            .unwrap_or_else(|| panic!("{event} acknowledged in time"))
    }

    async fn try_ask(&self, event: &str, payload: Payload) -> Option<Value> {
        let _in_flight = self.one_ack_at_a_time.lock().await;
        let (tx, rx) = oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        self.client
            .emit_with_ack(event, payload, WAIT, move |ack: Payload, _| {
                if let Some(tx) = tx.lock().ok().and_then(|mut tx| tx.take()) {
                    // The acknowledgement's arguments arrive as one array: keep the first.
                    let args = first_value(ack);
                    let _ = tx.send(args.get(0).cloned().unwrap_or(args));
                }
                async {}.boxed()
            })
            .await
            .ok()?;
        tokio::time::timeout(WAIT, rx).await.ok()?.ok()
    }

    /// Emits `private message` without asking for an acknowledgement, as the demo client does.
    pub async fn send_without_ack(&self, payload: Value) {
        self.emit("private message", payload).await;
    }

    /// Emits `event` without asking for an acknowledgement.
    pub async fn emit(&self, event: &str, payload: Value) {
        self.client.emit(event, payload).await.expect("emit");
    }

    pub async fn disconnect(self) {
        self.close().await;
    }

    /// Disconnects, keeping the client (and what it received) for the test to read.
    pub async fn close(&self) {
        let _ = self.client.disconnect().await;
    }
}

fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        Payload::Text(_) => Value::Null,
        #[allow(deprecated)]
        Payload::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Payload::Binary(bytes) => Value::String(format!("<{} binary bytes>", bytes.len())),
    }
}
