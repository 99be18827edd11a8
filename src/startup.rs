//! Builds the whole server from its settings: Redis pool and scripts, the Socket.IO layer with
//! its Redis adapter, the HTTP router; then runs it until a shutdown future resolves.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, serve::ListenerExt};
use socketioxide::{SocketIo, adapter::Emitter, handler::ConnectHandler, layer::SocketIoLayer};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc, watch},
};
use tower::ServiceBuilder;

use crate::{
    adapter::{self, RedisAdapter},
    client_addr,
    emitter::{self, EmitterFeed},
    http,
    metrics::Metrics,
    routing::{self, Publisher, UserRoutes},
    scope::{Inbox, Scope},
    settings::{METRICS_PORT_OFFSET, Settings},
    socket::{
        AppState, admission::Admission, handlers::on_connect, handshake::authenticate,
        lifecycle::Lifecycle, liveness, refresh, token::TokenVerifier,
    },
    store::{
        self, BlockStore, MessageLimits, MessageLog, MessageStore, PresenceStore, ReadMarkStore,
        RedisKind, RedisPool, SessionStore, UserIndex,
        redis::{ChannelMessage, PubSub, PubSubStatus},
    },
    webhooks::Webhooks,
};

/// How long a shutdown waits for the departures of its sockets to be saved and announced;
/// then as long again, at most, for refused messages to be removed (Redis Cluster).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the new-session limiter forgets the addresses whose quota has refilled.
const FORGET_EVERY: Duration = Duration::from_secs(60);

pub struct Application {
    listener: TcpListener,
    /// `/metrics`, on METRICS_ADDR (none when it is `off`).
    metrics: Option<(TcpListener, Router)>,
    router: Router,
    socketio: Mounted,
    state: Arc<AppState>,
}

/// The Socket.IO server once mounted, with its background work.
struct Mounted {
    io: SocketIo<RedisAdapter<Emitter>>,
    /// The liveness loop, the delivery of routed events, the user index's upkeep, and the
    /// scope's own (`all`: the directory's resync and the delivery of presence events).
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// What arrives from the other nodes: per-user events, and the scope's own; and what a
/// backend's Socket.IO emitter sends.
struct Deliveries {
    routed: mpsc::Receiver<ChannelMessage>,
    scope: Inbox,
    emitter: EmitterFeed,
}

impl Application {
    /// Connects to Redis, registers the handlers and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let tokens = TokenVerifier::from_settings(&settings).map_err(anyhow::Error::msg)?;
        let target = settings.redis_target();
        let metrics = Metrics::new();
        let pool = RedisPool::new(&target, settings.redis_pool_size, metrics.clone())?;
        store::load_scripts(&pool).await;
        let sessions = SessionStore::new(pool.clone());
        let node_id = uuid::Uuid::new_v4().simple().to_string();
        let pubsub = PubSub::connect(&target, metrics.clone()).await?;
        let (routes, deliveries) =
            UserRoutes::start(node_id.clone(), pubsub.clone(), metrics.clone());
        let emitter = EmitterFeed::subscribe(&target, &routes, &metrics).await?;
        let limits = MessageLimits {
            cap: settings.history_cap,
            history_ttl: settings.message_ttl(),
            contact_ttl: settings.contacts_ttl(),
        };
        // The one place the message write path is chosen: a script per batch on a standalone
        // Redis, single-key writes per master on a cluster.
        let log = match pool.kind() {
            RedisKind::Cluster => {
                MessageLog::cluster(pool.clone(), limits, settings.store_batch_delay())
            }
            RedisKind::Standalone => {
                MessageLog::standalone(pool.clone(), limits, settings.store_batch_delay())
            }
        };
        let messages = MessageStore::new(pool.clone(), log);
        // Decided here, once: the handlers ask the scope, never the setting.
        let (scope, scope_events) =
            Scope::new(&settings, &pool, &pubsub, &node_id, &metrics).await?;
        // One Arc: socketioxide's `State` extractor clones the state for every event.
        let users = UserIndex::new(
            pool.clone(),
            settings.session_ttl(),
            metrics.users_pruned.clone(),
        );
        let webhooks = settings.webhooks().map_err(anyhow::Error::msg)?;
        let webhooks = Webhooks::new(webhooks, &pool, users.clone(), &metrics)?;
        let state = Arc::new(AppState {
            publisher: Publisher::new(routes.clone(), pubsub.clone(), pool.clone()),
            sessions,
            presence: PresenceStore::new(pool.clone(), settings.node_ttl(), settings.session_ttl()),
            messages,
            max_message_bytes: settings.max_message_bytes,
            rate_limit: settings.rate_limit(),
            pending_messages: Arc::new(Semaphore::new(settings.max_pending_messages)),
            max_sockets_per_user: settings.max_sockets_per_user,
            admission: Admission::new(
                settings.max_connections as usize,
                settings.new_sessions_quota(),
            ),
            node_id,
            users,
            read_marks: ReadMarkStore::new(pool.clone(), settings.contacts_ttl()),
            blocks: BlockStore::new(pool.clone(), settings.max_blocked_users as usize),
            edit_window: std::time::Duration::from_secs(settings.edit_window_secs),
            scope,
            history_on_connect: settings.history_on_connect,
            tokens,
            webhooks,
            metrics,
            routes,
        });

        let deliveries = Deliveries {
            routed: deliveries,
            scope: scope_events,
            emitter,
        };
        let (router, socketio) = mount(&settings, &state, &pool, pubsub, deliveries).await?;

        let listener = TcpListener::bind(SocketAddr::new(settings.host, settings.port)).await?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        let metrics_addr = settings.metrics_listen_addr().map_err(anyhow::Error::msg)?;
        let metrics = match metrics_addr {
            Some(addr) => {
                let setting = match settings.metrics_addr {
                    Some(_) => "METRICS_ADDR".to_owned(),
                    None => format!("METRICS_ADDR's default, PORT + {METRICS_PORT_OFFSET}"),
                };
                let bound = TcpListener::bind(addr).await.map_err(|err| {
                    anyhow::anyhow!("cannot serve metrics on {setting} ({addr}): {err}")
                })?;
                tracing::info!("metrics on http://{}/metrics", bound.local_addr()?);
                Some((bound, http::metrics_router(state.metrics.clone())))
            }
            None => None,
        };
        Ok(Self {
            listener,
            metrics,
            router,
            socketio,
            state,
        })
    }

    /// The bound port, the one to connect to when the settings asked for port 0.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port `/metrics` is served on, if any (METRICS_ADDR may ask for port 0).
    pub fn metrics_port(&self) -> Option<u16> {
        let (listener, _) = self.metrics.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    /// Serves until `shutdown` resolves, then drains: stop accepting, save and announce the
    /// departure of every socket, close the transports, let the messages still being stored
    /// or removed finish, and return.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_accepting, stopped) = watch::channel(false);
        // Without TCP_NODELAY, a small frame written right after another (the `session` and
        // `users` events, an ack) waits for the peer's delayed ACK: ~40 ms per exchange.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
        });
        // The peer's address, for the limits per client address (see `client_addr`).
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let mut server = tokio::spawn(serve.into_future());
        // Scraped until the node is gone, the drain included.
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router).await {
                    tracing::error!(%err, "the metrics listener stopped");
                }
            })
        });

        tokio::select! {
            result = &mut server => return Ok(result??),
            () = shutdown => {}
        }
        stop_accepting.send_replace(true);
        for task in &self.socketio.background {
            task.abort();
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, self.socketio.drain(&self.state)).await;
        if drained.is_err() {
            tracing::warn!("some departures were not saved before the drain timeout");
        }
        // No socket is left to send a message: the ones still on their way to a Redis Cluster
        // are stored or refused, and the refused ones removed again, before the process (and
        // its retries) is gone.
        self.state.messages.finish_writes(DRAIN_TIMEOUT).await;
        if let Err(err) = self
            .state
            .presence
            .nodes()
            .retire(&self.state.node_id)
            .await
        {
            tracing::warn!(error = ?err, "cannot drop this node's liveness; it expires by itself");
        }
        server.await??;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Builds the Socket.IO layer on the Redis adapter (the same for both kinds of Redis): the
/// handshake middleware runs first, so nothing reaches a socket before it accepts; then the
/// liveness loop, the delivery of routed events, and the router with Socket.IO in front.
async fn mount(
    settings: &Settings,
    state: &Arc<AppState>,
    pool: &RedisPool,
    pubsub: PubSub,
    deliveries: Deliveries,
) -> anyhow::Result<(Router, Mounted)> {
    // Ready only while both connections hold their channels: the emitter's traffic is the
    // node's too.
    let status = pubsub.status().and(deliveries.emitter.status.clone());
    let resumed = pubsub.resumed();
    let (layer, io) = engine(settings)
        .with_state(state.clone())
        .with_adapter::<RedisAdapter<_>>(adapter::constructor(
            pubsub,
            deliveries.emitter.adapter_requests.clone(),
        ))
        .build_layer();
    io.ns("/", on_connect.with(authenticate)).await?;
    let heartbeat = settings.node_ttl() / 3;
    let [liveness, sweep] = liveness::spawn(io.clone(), state.clone(), heartbeat);
    let (node_id, metrics) = (&state.node_id, &state.metrics);
    let delivery = routing::spawn_delivery(
        io.clone(),
        deliveries.routed,
        node_id.clone(),
        metrics.clone(),
    );
    let from_emitter = emitter::spawn_receiver(
        io.clone(),
        deliveries.emitter.messages,
        metrics.clone(),
        usize::try_from(settings.max_payload_bytes).unwrap_or(usize::MAX),
    );
    let api = crate::api::from_settings(settings, state, pool, &io).map_err(anyhow::Error::msg)?;
    let router = with_socketio(settings, pool, status, layer, api);
    let upkeep = store::users::maintenance::spawn(
        state.users.clone(),
        node_id.clone(),
        settings.index_upkeep_delay(),
    );
    let forget =
        (state.admission).spawn_forget(FORGET_EVERY, metrics.new_session_addresses.clone());
    let refresh = refresh::spawn(io.clone(), state.clone(), settings.node_ttl());
    let mut background = vec![
        liveness,
        sweep,
        refresh,
        delivery,
        upkeep,
        forget,
        from_emitter,
    ];
    background.extend(state.webhooks.spawn());
    background.extend(state.scope.spawn(
        io.clone(),
        deliveries.scope,
        state,
        settings.directory_resync(),
        resumed,
    ));
    Ok((router, Mounted { io, background }))
}

impl Mounted {
    /// Takes every socket's departure in hand, sweeps this node's presence entries (saving
    /// and announcing every departure at once), then closes the transports (not a Socket.IO
    /// disconnect, so that clients reconnect, to another node if this one is gone).
    ///
    /// The sweep rather than each socket's leave: socketioxide 0.18's `SocketIo::close` drops
    /// its namespaces before closing the transports, so the disconnect handlers never run.
    async fn drain(&self, state: &AppState) {
        let sockets = self.io.of("/").map(|ns| ns.sockets()).unwrap_or_default();
        tracing::info!(
            sockets = sockets.len(),
            "sweeping the departure of every socket"
        );
        // Each arrival announced first (a joining socket holds its lifecycle until then), so
        // that no observer hears of a user online after the sweep announced it offline.
        // Bounded on its own, so that a slow join still leaves time for the sweep.
        let left = sockets.iter().filter_map(|socket| {
            let lifecycle = socket.extensions.get::<Lifecycle>()?;
            Some(async move { lifecycle.leaving().await.is_some() })
        });
        let left = futures_util::future::join_all(left);
        if tokio::time::timeout(DRAIN_TIMEOUT / 2, left).await.is_err() {
            tracing::warn!("some sockets were still joining; sweeping anyway");
        }
        liveness::sweep_self(&self.io, state).await;
        self.io.close().await;
    }
}

/// How long a client has, after opening the transport, to send its Socket.IO connect. The
/// library keeps a refused or abandoned handshake's state this long (~18 KB each), so the
/// Node default of 45 s would let a flood of garbage handshakes hold memory for nothing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What each WebSocket connection reads into, and keeps (tungstenite's `in_buffer`, at this
/// size for an idle connection): a client's frames are small (a `private message` of a few
/// hundred bytes; at most ~25 KB, 4,096 characters all escaped), and a larger one is read in
/// several steps into a buffer grown for it. 1 KiB instead of engineioxide's 4 KiB default
/// saves 2–3 KiB of RSS per connection (BENCHMARKS.md, "Presence to the contacts online").
pub const WS_READ_BUFFER: usize = 1024;

/// Engine.IO limits shared by both adapters. socketioxide's own tracing is left off: at debug
/// level it logs raw packets, sessionIDs included.
fn engine(settings: &Settings) -> socketioxide::SocketIoBuilder {
    let max = settings.max_payload_bytes;
    SocketIo::builder()
        .max_payload(max)
        .max_buffer_size(settings.max_socket_buffer)
        .ws_max_message_size(usize::try_from(max).unwrap_or(usize::MAX))
        .ws_read_buffer_size(WS_READ_BUFFER)
        .connect_timeout(CONNECT_TIMEOUT)
}

/// The HTTP router (with the server API at `/api/` when there is one) with, in front of it:
/// the client's address, CORS, the origin check, then Socket.IO.
fn with_socketio<A: socketioxide::adapter::Adapter>(
    settings: &Settings,
    pool: &RedisPool,
    pubsub: PubSubStatus,
    layer: SocketIoLayer<A>,
    api: Option<Router>,
) -> Router {
    let origins = http::AllowedOrigins::new(&settings.cors_origins);
    let proxies = settings.trusted_proxies.clone();
    let mut router = http::router(pool.clone(), pubsub, &settings.client_dir);
    if let Some(api) = api {
        router = router.nest("/api", api);
    }
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                proxies,
                client_addr::resolve,
            ))
            .layer(http::cors(&settings.cors_origins))
            .layer(axum::middleware::from_fn_with_state(
                origins,
                http::check_origin,
            ))
            .layer(axum::middleware::from_fn(http::detach_head))
            .layer(layer),
    )
}
