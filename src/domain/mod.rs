//! Checked types: untrusted input is parsed into these at the edge, and code past the edge
//! trusts them.

mod ids;
mod message;
mod search;
mod session;
mod typing;
mod username;

pub use ids::{SessionId, UserId};
pub use message::{Message, MessageContent, OutgoingMessage, Refusal};
pub use search::{SearchQuery, SearchRefusal};
pub use session::Session;
pub use typing::{Typing, TypingRefusal};
pub use username::Username;
