//! `block user` / `unblock user`: `{ userID }` adds that user to the caller's block list, or
//! takes it off; the ack is the whole list, `{ blocked: [userID...] }`, or `{ error }`. The
//! list lives in Redis (every node reads the same, a restart keeps it); what it does to a
//! message is decided in the message's own writes ([`crate::store::BlockStore`]). It shares
//! the socket's message bucket.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::{
    domain::{BlockRefusal, Session, block_target},
    store::Blocked,
};

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum BlockAck {
    Blocked(Vec<String>),
    Error(String),
}

/// Which of the two events.
#[derive(Clone, Copy)]
enum Action {
    Block,
    Unblock,
}

impl Action {
    fn event(self) -> &'static str {
        match self {
            Self::Block => "block user",
            Self::Unblock => "unblock user",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }
}

pub async fn on_block_user<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    answer(&socket, Action::Block, payload, ack, &session, &state).await;
}

pub async fn on_unblock_user<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    answer(&socket, Action::Unblock, payload, ack, &session, &state).await;
}

async fn answer<A: Adapter>(
    socket: &SocketRef<A>,
    action: Action,
    payload: Metered<Value>,
    ack: AckSender<A>,
    session: &Session,
    state: &AppState,
) {
    let result = apply(action, payload, session, state).await;
    let reply = match result {
        Ok(list) => {
            state.metrics.moderation(action.label());
            ack.send(&BlockAck::Blocked(list))
        }
        Err(refusal) => {
            let label = format!("{}_refused_{}", action.label(), refusal.metric_label());
            state.metrics.moderation(&label);
            ack.send(&BlockAck::Error(refusal.to_string()))
        }
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer {}", action.event());
    }
}

async fn apply(
    action: Action,
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<Vec<String>, BlockRefusal> {
    let Some(payload) = payload.admit(&state.metrics, action.event()) else {
        return Err(BlockRefusal::RateLimited);
    };
    let me = &session.user_id;
    let user = block_target(&payload.unwrap_or(Value::Null), me)?;
    let unavailable = |err| {
        tracing::error!(error = ?err, "cannot change a block list");
        BlockRefusal::StorageUnavailable
    };
    match action {
        Action::Block => match state.blocks.block(me.as_str(), user.as_str()).await {
            Ok(Blocked::List(list)) => Ok(list),
            Ok(Blocked::Full) => Err(BlockRefusal::TooMany(state.blocks.limit())),
            Err(err) => Err(unavailable(err)),
        },
        Action::Unblock => state
            .blocks
            .unblock(me.as_str(), user.as_str())
            .await
            .map_err(unavailable),
    }
}
