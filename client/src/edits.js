// Deleting and editing our own messages (PROTOCOL.md, "Moderation"): `delete message` and
// `edit message` from a message's menu, and `message deleted` / `message edited`, which every
// socket of both users receives (ours in other tabs, the peer's), applied live.
import socket, { ACK_TIMEOUT_MS } from "./socket";
import { state, findUser } from "./state";
import { isOrderedId, uncountDeleted } from "./reads";

// Only the sender may change a message, and only one the server stored with an id of ours
// (the Node server's messages have none, or a `legacy:` address, and cannot be changed).
export function canChange(message) {
  return Boolean(message.fromSelf && message.status === "sent" && isOrderedId(message.id));
}

// Is "Edit" worth offering? The client cannot know EDIT_WINDOW_SECS: it offers editing until the
// server has said no ("editing is off" for every message, "too late to edit" for this one).
export function canEdit(message) {
  return canChange(message) && !state.editingOff && !message.editClosed;
}

// The conversation a `{ from, to }` belongs to, from our side.
function conversationOf({ from, to }) {
  return findUser(from === socket.userID ? to : from);
}

function removeMessage(user, id) {
  const index = user.messages.findIndex((m) => m.id === id);
  if (index < 0) return;
  uncountDeleted(user, index);
  user.messages.splice(index, 1);
}

function applyEdit(user, { id, content, editedAt }) {
  const message = user.messages.find((m) => m.id === id);
  if (!message) return;
  message.content = content;
  message.editedAt = editedAt;
}

// Asks the server with an ack, and resolves with its answer, or `{ error }` when none came.
function ask(event, payload) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, res) => {
      if (err) resolve({ error: "no answer from the server" });
      else resolve(res && typeof res === "object" ? res : { error: "unknown error" });
    });
  });
}

// Deletes our `message` from the conversation with `user`. It goes when the server says so (the
// ack, or `message deleted`, whichever comes first); a refusal is shown under the message.
export async function deleteMessage(user, message) {
  if (!canChange(message) || message.changing) return;
  message.changing = true;
  message.changeError = "";
  const res = await ask("delete message", { with: user.userID, id: message.id });
  message.changing = false;
  if (res.error) message.changeError = String(res.error);
  else removeMessage(user, message.id);
}

// Replaces the content of our `message`. Resolves true once the server has taken it (the editor
// can close); false after a refusal, which is shown under the message. "too late to edit" also
// closes editing for this message and our older ones; "editing is off" for every message.
export async function editMessage(user, message, content) {
  if (!canChange(message) || message.changing) return false;
  if (content === message.content) return true;
  message.changing = true;
  message.changeError = "";
  const res = await ask("edit message", { with: user.userID, id: message.id, content });
  message.changing = false;
  if (res.message && res.message.id === message.id) {
    applyEdit(user, res.message);
    return true;
  }
  const error = String(res.error || "unknown error");
  message.changeError = error;
  if (error === "editing is off") state.editingOff = true;
  if (error === "too late to edit") {
    for (const m of user.messages) {
      if (m.fromSelf && m.timestamp <= message.timestamp) m.editClosed = true;
    }
  }
  return false;
}

// --- server events: changes made by our other tabs, by the peer, or by this tab ---------------

const isChange = (p) => p && typeof p.id === "string" && typeof p.from === "string" && typeof p.to === "string";

socket.on("message deleted", (payload) => {
  if (!isChange(payload)) return;
  const user = conversationOf(payload);
  if (user) removeMessage(user, payload.id);
});

socket.on("message edited", (payload) => {
  if (!isChange(payload) || typeof payload.content !== "string") return;
  const user = conversationOf(payload);
  if (user) applyEdit(user, payload);
});
