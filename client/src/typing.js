// "typing…" both ways (docs/protocol.md, "Client to server", `typing`): we tell the open conversation's peer, at most
// so often, and show a peer's indicator for a while after its last `typing`.
import socket from "./socket";
import { state, findUser } from "./state";

const TYPING_EVERY_MS = 2000; // at most one `typing` per conversation this often
const TYPING_SHOWN_MS = 3000; // "typing…" stays this long after the last `typing`

const typingTimers = new Map(); // userID -> timer that hides "typing…"
const typingSentAt = new Map(); // userID -> when we last told that user we were typing

export function stopTyping(user) {
  clearTimeout(typingTimers.get(user.userID));
  typingTimers.delete(user.userID);
  user.typing = false;
}

// Called on every keystroke in the message box: at most one `typing` per TYPING_EVERY_MS.
export function notifyTyping() {
  const user = findUser(state.selectedUserID);
  if (!user || user.self || !socket.connected) return;
  const now = Date.now();
  if (now - (typingSentAt.get(user.userID) || 0) < TYPING_EVERY_MS) return;
  typingSentAt.set(user.userID, now);
  socket.emit("typing", { to: user.userID });
}

// Another user signs in: no timers of the previous one left running.
export function resetTyping() {
  for (const t of typingTimers.values()) clearTimeout(t);
  typingTimers.clear();
  typingSentAt.clear();
}

socket.on("typing", (payload) => {
  const user = payload && findUser(payload.from);
  if (!user || user.self) return;
  user.typing = true;
  clearTimeout(typingTimers.get(user.userID));
  typingTimers.set(user.userID, setTimeout(() => {
    typingTimers.delete(user.userID);
    user.typing = false;
  }, TYPING_SHOWN_MS));
});
