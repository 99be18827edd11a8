// The chat client's public API: the state and actions the components import from here, kept out
// of them so they only render. Each concern has its module: state.js (the reactive state),
// users.js, messages.js, history.js (older pages), reads.js (unread counts, read ticks),
// typing.js, search.js, session.js (sign-in: username, token, sessionID), blocks.js and edits.js
// (moderation: blocking, deleting and editing our messages). This one follows the
// connection, and the users list as the server sends it.
import socket from "./socket";
import { state, selfUser, findUser } from "./state";
import { sortUsers, newUser, addUser, selectUser } from "./users";
import { toLocal, sendMessage } from "./messages";
import { loadOlder, resyncHistory } from "./history";
import { isReadByPeer, resyncReads, readOpenAfterResync } from "./reads";
import { notifyTyping } from "./typing";
import { clearSearch, search, openConversation } from "./search";
import { start, login, loginWithToken, useUsername, logout } from "./session";
import { isMarkedBlocked, setBlocked } from "./blocks";
import { canChange, canEdit, deleteMessage, editMessage } from "./edits";

export {
  state, findUser, selectUser, sendMessage, loadOlder, isReadByPeer, notifyTyping,
  clearSearch, search, openConversation, start, login, loginWithToken, useUsername, logout,
  setBlocked, canChange, canEdit, deleteMessage, editMessage,
};

// --- server events: the connection, and who is there ---------------------------------

socket.on("connect", () => {
  state.connection = "connected";
  const me = selfUser();
  if (me) me.connected = true;
});

socket.on("disconnect", (reason) => {
  const me = selfUser();
  if (me) me.connected = false;
  if (reason === "io server disconnect" && state.screen === "chat") {
    // The server closed us on purpose (a node shutting down for a restart, typically);
    // socket.io won't retry that by itself, so we do, after a pause with some jitter.
    state.connection = "reconnecting";
    setTimeout(() => {
      if (state.screen === "chat" && !socket.connected) socket.connect();
    }, 1000 + Math.random() * 2000);
    return;
  }
  // socket.active is true while socket.io will try again on its own.
  state.connection = socket.active ? "reconnecting" : "offline";
});

socket.io.on("reconnect_attempt", () => {
  state.connection = "reconnecting";
});

socket.on("users", (users) => {
  for (const u of users) {
    const history = u.messages.map(toLocal);
    const existing = findUser(u.userID);
    if (existing) {
      existing.connected = u.connected;
      existing.username = u.username;
      existing.blocked = isMarkedBlocked(u);
      resyncHistory(existing, history);
      resyncReads(existing, u);
    } else {
      state.users.push(newUser(u, history));
    }
  }
  const me = selfUser();
  if (me) me.connected = true;
  sortUsers();
  readOpenAfterResync();
});

socket.on("user connected", (u) => {
  const existing = findUser(u.userID);
  if (existing) {
    // An introduction (USERS_SCOPE=contacts: someone's first message) carries the real status.
    existing.connected = u.connected !== false;
    return;
  }
  addUser(u);
});

socket.on("user disconnected", (userID) => {
  const user = findUser(userID);
  if (user) user.connected = false;
});
