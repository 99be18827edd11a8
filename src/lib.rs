//! A persistent private-messaging Socket.IO server backed by Redis.
//!
//! Map of the crate, following a connection from the outside in:
//! - [`startup`] builds the HTTP router, the Socket.IO layer and the Redis adapter;
//! - [`client_addr`] tells who a request comes from (the peer, or behind a trusted proxy);
//! - [`socket::handshake`] authenticates a connecting socket (restore or create a session);
//! - [`socket::handlers`] answers the events of a connected socket;
//! - [`socket::presence`] decides when a user is really offline, across nodes, and announces it;
//! - [`scope`] is who a user sees and hears of (`USERS_SCOPE`), chosen once at start;
//! - [`directory`] is every node's in-memory list of users, which `users` is built from in
//!   the `all` scope;
//! - [`routing`] carries a user's events to the nodes holding its sockets, and only those;
//! - [`emitter`] takes what a backend's `@socket.io/redis-emitter` publishes to those sockets;
//! - [`store`] holds the typed Redis verbs (sessions, messages) and [`domain`] the checked types;
//! - [`webhooks`] tells the application around the server of messages (signed POSTs);
//! - [`api`] is the server API (`API_KEY`), for a backend beside the chat: it sends through the
//!   socket's own write path ([`socket::send`]) and calls the same store verbs.

pub mod adapter;
pub mod api;
pub mod client_addr;
pub mod directory;
pub mod domain;
pub mod emitter;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod routing;
pub mod scope;
pub mod settings;
pub mod shutdown;
pub mod socket;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;
