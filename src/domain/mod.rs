//! Checked types: untrusted input is parsed into these at the edge, and code past the edge
//! trusts them.

mod block;
mod change;
mod ids;
mod message;
mod page;
mod read;
mod search;
mod session;
mod typing;
mod username;

pub use block::{BlockRefusal, parse_target as block_target};
pub use change::{ChangeRefusal, MessageChange};
pub use ids::{SessionId, UserId};
pub use message::{Message, MessageContent, OutgoingMessage, Refusal};
pub use page::{
    Before, PageRefusal, PageRequest, address_legacy, legacy_address, legacy_numbers,
    newest_per_conversation,
};
pub use read::{ReadMarks, ReadRefusal, ReadRequest, ReadView};
pub use search::{SearchQuery, SearchRefusal};
pub use session::Session;
pub use typing::{Typing, TypingRefusal};
pub use username::Username;
