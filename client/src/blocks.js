// Blocking (PROTOCOL.md, "Moderation"): `block user` / `unblock user` from the open
// conversation's header, and the "blocked" mark from `users`, `search users` and the acks.
// The server enforces the block (a blocked user's messages and typing never reach us); the
// client only shows who is blocked and asks for changes.
import socket, { ACK_TIMEOUT_MS } from "./socket";
import { state } from "./state";

// Is `u` (a `users` entry or a `search users` result) marked blocked by us? Only `true` counts:
// a server without moderation sends no such field.
export function isMarkedBlocked(u) {
  return Boolean(u) && u.blocked === true;
}

// `{ blocked: [userID...] }` is our whole block list: every user we list takes it from there.
function applyBlockList(blocked) {
  const ids = new Set(blocked.filter((id) => typeof id === "string"));
  for (const user of state.users) user.blocked = ids.has(user.userID);
}

// Blocks (or unblocks) `user`. Until the answer the button is disabled; a refusal (or no
// answer) is shown in the header and the mark stays as the server last said.
export function setBlocked(user, blocked) {
  if (!user || user.self || user.blockPending) return;
  user.blockPending = true;
  user.blockError = "";
  const event = blocked ? "block user" : "unblock user";
  socket.timeout(ACK_TIMEOUT_MS).emit(event, { userID: user.userID }, (err, res) => {
    user.blockPending = false;
    if (err) {
      user.blockError = "no answer from the server";
    } else if (res && Array.isArray(res.blocked)) {
      applyBlockList(res.blocked);
    } else {
      user.blockError = (res && res.error) || "unknown error";
    }
  });
}
