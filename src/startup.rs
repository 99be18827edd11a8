//! Builds the whole server from its settings: Redis pool and scripts, the Socket.IO layer with
//! its Redis adapter, the HTTP router; then runs it until a shutdown future resolves.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::Router;
use socketioxide::{SocketIo, adapter::Emitter, handler::ConnectHandler};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceBuilder;

use crate::{
    adapter::{self, RedisAdapter},
    http,
    settings::Settings,
    socket::{self, AppState},
    store::{self, MessageStore, SessionStore},
};

/// How long a shutdown waits for the departures of its sockets to be saved and announced.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

type Io = SocketIo<RedisAdapter<Emitter>>;

pub struct Application {
    listener: TcpListener,
    router: Router,
    io: Io,
    state: AppState,
}

impl Application {
    /// Connects to Redis, registers the handlers and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = store::pool(&settings.redis_url, settings.redis_pool_size)?;
        store::load_scripts(&pool).await;
        let state = AppState {
            sessions: SessionStore::new(pool.clone(), settings.session_ttl()),
            messages: MessageStore::new(pool.clone(), settings.message_ttl(), settings.history_cap),
            max_message_bytes: settings.max_message_bytes,
            node_id: uuid::Uuid::new_v4().simple().to_string(),
        };

        let (layer, io) = SocketIo::builder()
            .with_state(state.clone())
            .with_adapter::<RedisAdapter<_>>(adapter::redis(&settings.redis_url).await?)
            .build_layer();
        // The handshake middleware runs first; nothing reaches the socket before it accepts.
        io.ns(
            "/",
            socket::handlers::on_connect.with(socket::handshake::authenticate),
        )
        .await?;

        let router = http::router(pool, &settings.client_dir).layer(
            ServiceBuilder::new()
                .layer(http::cors(&settings.cors_origins))
                .layer(layer),
        );
        let listener = TcpListener::bind(SocketAddr::new(settings.host, settings.port)).await?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        Ok(Self {
            listener,
            router,
            io,
            state,
        })
    }

    /// The bound port, the one to connect to when the settings asked for port 0.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains: stop accepting, save and announce the
    /// departure of every socket, close the transports, and return.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_accepting, stopped) = watch::channel(false);
        let serve = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let mut server = tokio::spawn(serve.into_future());

        tokio::select! {
            result = &mut server => return Ok(result??),
            () = shutdown => {}
        }
        stop_accepting.send_replace(true);
        let departures = socket::presence::leave_all(&self.io, &self.state);
        if tokio::time::timeout(DRAIN_TIMEOUT, departures)
            .await
            .is_err()
        {
            tracing::warn!("some departures were not saved before the drain timeout");
        }
        // Closing the transports (not a Socket.IO disconnect) lets clients reconnect elsewhere.
        self.io.close().await;
        server.await??;
        tracing::info!("stopped");
        Ok(())
    }
}
