//! Checked types: untrusted input is parsed into these at the edge, and code past the edge
//! trusts them.

mod ids;
mod message;
mod session;
mod username;

pub use ids::{SessionId, UserId};
pub use message::{Message, MessageContent, OutgoingMessage, Refusal};
pub use session::Session;
pub use username::Username;
