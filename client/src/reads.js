// Read state (docs/protocol.md, "Client to server", `messages read`): unread counts, the `messages read` marks we send for
// the conversation on screen, and the read ticks on our messages from the peer's marks.
import socket from "./socket";
import { state, findUser } from "./state";

const READ_DEBOUNCE_MS = 200; // a burst of messages in the open conversation: one `messages read`

const readTimers = new Map(); // userID -> pending `messages read`

// Message ids are UUIDv7 strings: time-ordered, so compared as strings. Messages written by the
// Node server have none, or (in `fetch messages` pages) one like `legacy:3` that orders nothing.
export function isOrderedId(id) {
  return typeof id === "string" && id.length === 36 && !id.startsWith("legacy:");
}

// Is the conversation with `user` on screen right now (open, and the tab visible)?
function isOnScreen(user) {
  return state.screen === "chat" && user.userID === state.selectedUserID &&
    (typeof document === "undefined" || document.visibilityState !== "hidden");
}

// The newest message from `user` to me with a UUID: what `messages read` marks (the Node
// server's messages, id-less or `legacy:<n>`, are never unread and cannot be marks).
function newestFromPeer(user) {
  for (let i = user.messages.length - 1; i >= 0; i--) {
    const m = user.messages[i];
    if (!m.fromSelf && isOrderedId(m.id)) return m;
  }
  return null;
}

function clearUnread(user) {
  user.unread = 0;
  user.hasNewMessages = false;
}

// The conversation is on screen: it is read. Clears the count at once and tells the server
// (and through it our other tabs and the peer) a moment later, once for a burst of messages.
export function scheduleMarkRead(user) {
  clearUnread(user);
  if (user.self || readTimers.has(user.userID)) return;
  readTimers.set(user.userID, setTimeout(() => {
    readTimers.delete(user.userID);
    const newest = newestFromPeer(user);
    if (!newest || newest.id === user.sentReadUpTo) return;
    user.sentReadUpTo = newest.id;
    socket.emit("messages read", { with: user.userID, upTo: newest.id });
  }, READ_DEBOUNCE_MS));
}

// A message from `user` to me has arrived: read at once if its conversation is on screen,
// counted as unread otherwise.
export function countIncoming(user) {
  if (isOnScreen(user)) {
    scheduleMarkRead(user);
  } else {
    user.hasNewMessages = true;
    user.unread += 1;
  }
}

// The message at `index` in the conversation with `user` is going (deleted by its sender): if it
// is one of the peer's messages we have not read, the count loses it. Unread are the peer's
// newest `unread` messages (those after our read mark), so it is unread when fewer than
// `unread` of the peer's messages come after it.
export function uncountDeleted(user, index) {
  const message = user.messages[index];
  if (!message || message.fromSelf || !isOrderedId(message.id) || user.unread <= 0) return;
  const after = user.messages.slice(index + 1).filter((m) => !m.fromSelf && isOrderedId(m.id)).length;
  if (after < user.unread) {
    user.unread -= 1;
    user.hasNewMessages = user.unread > 0;
  }
}

// Does the peer's read mark cover this message of mine? (Legacy ids never do.)
export function isReadByPeer(user, message) {
  return Boolean(message.fromSelf && message.status === "sent" && isOrderedId(message.id) &&
    isOrderedId(user.readUpTo) && message.id <= user.readUpTo);
}

// `users` again (a reconnect or reload): the server's unread count and the peer's read mark
// replace ours for a user we already list (`u` is its `users` entry).
export function resyncReads(user, u) {
  if (typeof u.unread === "number" && !user.self) {
    user.unread = u.unread;
    user.hasNewMessages = u.unread > 0;
  }
  if (u.readUpTo !== undefined) user.readUpTo = u.readUpTo || null;
}

// A reload (or reconnect) with a conversation open: what it shows is read.
export function readOpenAfterResync() {
  const open = findUser(state.selectedUserID);
  if (open && isOnScreen(open) && open.unread > 0) scheduleMarkRead(open);
}

// Another user signs in: no `messages read` of the previous one left to send.
export function resetReads() {
  for (const t of readTimers.values()) clearTimeout(t);
  readTimers.clear();
}

// The tab came back into view: the open conversation is read now.
if (typeof document !== "undefined") {
  document.addEventListener("visibilitychange", () => {
    const user = findUser(state.selectedUserID);
    if (user && isOnScreen(user) && (user.unread > 0 || user.hasNewMessages)) scheduleMarkRead(user);
  });
}

// `{ by, with, upTo }`: `by` read its conversation with `with` up to `upTo`. Either another tab
// of ours (by === me: clear the count) or the peer (with === me: read ticks on my messages).
socket.on("messages read", (payload) => {
  if (!payload || typeof payload.upTo !== "string") return;
  const { by, with: withID, upTo } = payload;
  if (by === socket.userID) {
    const user = findUser(withID);
    if (!user) return;
    user.sentReadUpTo = upTo;
    const newest = newestFromPeer(user);
    if (!newest || newest.id === upTo || (isOrderedId(upTo) && newest.id <= upTo)) {
      clearUnread(user);
    } else if (isOrderedId(upTo)) {
      // Read up to some point: what is still unread is what came after it.
      const left = user.messages.filter((m) => !m.fromSelf && isOrderedId(m.id) && m.id > upTo).length;
      user.unread = Math.min(user.unread, left);
      user.hasNewMessages = user.unread > 0;
    }
  } else if (withID === socket.userID) {
    const user = findUser(by);
    if (!user) return;
    // Never backwards; a legacy id orders nothing.
    if (!isOrderedId(user.readUpTo) || (isOrderedId(upTo) && upTo > user.readUpTo)) user.readUpTo = upTo;
  }
});
