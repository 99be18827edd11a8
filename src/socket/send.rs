//! The one write path of a message, whoever sends it: a socket's `private message` and the
//! server API's `POST /api/messages` both come here, so that a message is checked, stored,
//! published to the other nodes, introduced (contacts scope) and emitted to this node's sockets
//! the same way. It needs no socket: the caller says which of this node's sockets may be told
//! ([`Here`]).

use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Adapter, extract::SocketRef, operators::BroadcastOperators};

use super::AppState;
use crate::scope::Kept;
use crate::{
    domain::{Message, OutgoingMessage, Refusal, UserId},
    store::Record,
};

/// Who a message is from, as the recipient is introduced to it (`user connected` in the
/// contacts scope): its `connected` is the sender's real status.
pub struct Sender<'a> {
    pub user_id: &'a UserId,
    pub username: &'a str,
    pub connected: bool,
}

/// This node's sockets a message may be emitted to: every one (`io.local()`, the API has no
/// sending socket), or every one but the sending socket (`socket.local()`: the sender already
/// has its message in its ack).
#[derive(Clone)]
pub struct Here<A: Adapter> {
    pub local: BroadcastOperators<A>,
    /// The sending socket's id, left out of the sockets that count as "someone to tell here".
    pub except: Option<String>,
}

impl<A: Adapter> Here<A> {
    /// Every socket of this node.
    pub fn all(io: &SocketIo<A>) -> Self {
        Self {
            local: io.local(),
            except: None,
        }
    }

    /// Every socket of this node but `socket`.
    pub fn but(socket: &SocketRef<A>) -> Self {
        Self {
            local: socket.local(),
            except: Some(socket.id.as_str().to_owned()),
        }
    }
}

/// Stamps, stores and delivers a checked message from `sender`; answers the message as
/// stored (its JSON, encoded once for storage, delivery and the answer). A refusal means it
/// was neither stored nor delivered.
pub async fn send_message<A: Adapter>(
    state: &AppState,
    here: &Here<A>,
    sender: &Sender<'_>,
    outgoing: OutgoingMessage,
) -> Result<Box<RawValue>, Refusal> {
    // Held until the message is stored and forwarded: past the limit, refuse at once rather
    // than let every message wait behind a growing queue.
    let _pending = state
        .pending_messages
        .try_acquire()
        .map_err(|_| Refusal::Busy)?;
    let message = Message::new(sender.user_id, outgoing);
    let json = serde_json::value::to_raw_value(&message).map_err(|err| {
        tracing::error!(%err, "cannot encode a message");
        Refusal::StorageUnavailable
    })?;
    let (from, to) = (message.from.as_str(), message.to.as_str());
    // The one place a message's webhooks are decided: queued in its own writes below.
    let webhooks = state.webhooks.jobs_for(&message, &json);
    let record = Record {
        from,
        to,
        id: message.id.as_deref().unwrap_or_default(),
        json: json.get(),
        webhooks: &webhooks,
    };
    // Stored, and published to the other nodes, before it is emitted here: whatever a client
    // is shown is also in the history.
    let kept = state
        .scope
        .store_message(&here.local, sender, state, &record)
        .await?;
    // A message the recipient blocked is the sender's alone: its other tabs get it, never
    // the recipient's (answered `{ message }` all the same, PROTOCOL.md "Moderation").
    let to = match kept {
        Kept::Both => to,
        Kept::SenderOnly => from,
    };
    emit_here(here, state, from, to, &json).await;
    Ok(json)
}

/// Emits a stored message to this node's sockets of either user (but not the sending one).
/// Most messages have none here (the recipient on another node, no other tab): those skip the
/// emit, which would encode the packet before finding no socket to send it to.
async fn emit_here<A: Adapter>(
    here: &Here<A>,
    state: &AppState,
    from: &str,
    to: &str,
    json: &RawValue,
) {
    let except = here.except.as_deref().unwrap_or_default();
    if !state.routes.others_here(&[to, from], except) {
        return;
    }
    let local = here.local.clone().to([to.to_owned(), from.to_owned()]);
    let sent = local.emit("private message", json).await;
    state.metrics.emitted("private message", sent);
}
