//! End-to-end tests of the server: real Redis, real server nodes on port 0, real clients.
//! One binary, so that the helpers are compiled once.

mod helpers;

mod abuse;
mod api_access;
mod api_erasure;
mod api_messages;
mod api_reach;
mod api_users;
mod audit;
mod bad_input;
mod chaos;
mod cluster_outage;
mod cluster_split;
mod cluster_undo;
mod contacts;
mod contacts_presence;
mod crash;
mod directory;
mod emitter;
mod emitter_outage;
mod forwarded;
mod fuzz;
mod handshake;
mod http;
mod jwt;
mod legacy_data;
mod limits;
mod lua_scripts;
mod memory;
mod messaging;
mod nginx;
mod outage;
mod pages;
mod presence;
mod read_state;
mod redis_auth;
mod redis_layout;
mod restart;
mod routing;
mod search;
mod security;
mod slow_reader;
mod store_batches;
mod typing;
mod users;
