// All chat state and socket wiring, kept out of the components so they only render.
import { reactive } from "vue";
import socket from "./socket";

const SESSION_KEY = "sessionID";
const ACK_TIMEOUT_MS = 10000;

export const state = reactive({
  // "login" (choose a username) or "chat"
  screen: "login",
  loginError: "",
  // "connecting" | "connected" | "reconnecting" | "offline"
  connection: "connecting",
  users: [],
  selectedUserID: null,
  // "find someone to talk to": the last query's answer (`search users`)
  search: { query: "", results: [], error: "", pending: false },
});

let localKey = 0; // stable v-for keys for messages that have no server id yet

function self() {
  return state.users.find((u) => u.self);
}

export function findUser(userID) {
  return state.users.find((u) => u.userID === userID);
}

function sortUsers() {
  // Yourself first, then everybody else by name.
  state.users.sort((a, b) => {
    if (a.self) return -1;
    if (b.self) return 1;
    return a.username.localeCompare(b.username);
  });
}

function toLocal(message) {
  return {
    ...message,
    key: message.id || `local-${++localKey}`,
    fromSelf: message.from === socket.userID,
    status: "sent",
  };
}

function addIncoming(user, message) {
  // The same stored message can reach us twice (history resync + live event): dedupe by id.
  if (message.id && user.messages.some((m) => m.id === message.id)) return;
  user.messages.push(toLocal(message));
  if (user.userID !== state.selectedUserID) user.hasNewMessages = true;
}

function reset() {
  state.users = [];
  state.selectedUserID = null;
  clearSearch();
  socket.userID = undefined;
}

// Adds a user this client did not know yet (a search result, or the peer of a conversation that
// another tab of ours started) to the list, without its history: the server sends history in
// `users` only, and a new conversation has none yet.
function addUser(u) {
  const existing = findUser(u.userID);
  if (existing) return existing;
  state.users.push({
    userID: u.userID,
    username: u.username,
    connected: Boolean(u.connected),
    self: u.userID === socket.userID,
    messages: [],
    hasNewMessages: false,
  });
  sortUsers();
  return findUser(u.userID);
}

// --- actions used by the components -------------------------------------------------

export function start() {
  const sessionID = localStorage.getItem(SESSION_KEY);
  if (sessionID) {
    // A stored session: reconnect with it and skip the username screen.
    state.screen = "chat";
    socket.auth = { sessionID };
    socket.connect();
  }
}

export function login(username) {
  reset();
  state.loginError = "";
  state.screen = "chat";
  state.connection = "connecting";
  socket.auth = { username };
  socket.connect();
}

export function logout() {
  localStorage.removeItem(SESSION_KEY);
  socket.disconnect();
  socket.auth = {};
  reset();
  state.screen = "login";
}

export function selectUser(userID) {
  state.selectedUserID = userID;
  const user = findUser(userID);
  if (user) user.hasNewMessages = false;
}

export function clearSearch() {
  state.search.query = "";
  state.search.results = [];
  state.search.error = "";
  state.search.pending = false;
}

let searchSeq = 0; // answers to superseded queries are ignored

// `search users` (PROTOCOL.md, "Scope of the user directory"): usernames starting with `query`,
// case-insensitive, never ourselves. Works in both scopes; in `contacts` it is how a user finds
// someone it has never talked to.
export function search(query) {
  state.search.query = query;
  const trimmed = query.trim();
  if (!trimmed) {
    clearSearch();
    return;
  }
  const seq = ++searchSeq;
  state.search.pending = true;
  socket.timeout(ACK_TIMEOUT_MS).emit("search users", { query: trimmed, limit: 20 }, (err, res) => {
    if (seq !== searchSeq) return;
    state.search.pending = false;
    if (err) {
      state.search.results = [];
      state.search.error = "no answer from the server";
    } else if (res && Array.isArray(res.users)) {
      state.search.results = res.users;
      state.search.error = "";
    } else {
      state.search.results = [];
      state.search.error = (res && res.error) || "unknown error";
    }
  });
}

// Opens the conversation with a search result, adding the user to the list if it is new.
export function openConversation(u) {
  addUser(u);
  clearSearch();
  selectUser(u.userID);
}

export function sendMessage(content) {
  const user = findUser(state.selectedUserID);
  if (!user || !content) return;
  user.messages.push({
    key: `local-${++localKey}`,
    content,
    from: socket.userID,
    to: user.userID,
    fromSelf: true,
    status: "pending",
  });
  // Take the reactive proxy back out of the array so later edits re-render.
  const msg = user.messages[user.messages.length - 1];
  socket.timeout(ACK_TIMEOUT_MS).emit("private message", { content, to: user.userID }, (err, res) => {
    if (err) {
      // No ack: we cannot know whether it was stored, so say so instead of faking "sent".
      msg.status = "failed";
      msg.error = "no answer from the server";
    } else if (res && res.message) {
      const duplicate = res.message.id && user.messages.some((m) => m !== msg && m.id === res.message.id);
      if (duplicate) {
        user.messages.splice(user.messages.indexOf(msg), 1); // history resync already has it
      } else {
        Object.assign(msg, res.message, { status: "sent" });
      }
    } else {
      msg.status = "failed";
      msg.error = (res && res.error) || "unknown error";
    }
  });
}

// --- server events -------------------------------------------------------------------

socket.on("connect", () => {
  state.connection = "connected";
  const me = self();
  if (me) me.connected = true;
});

socket.on("disconnect", (reason) => {
  const me = self();
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

socket.on("connect_error", (err) => {
  if (err.message === "invalid username") {
    // Either a bad name or a stored session the server no longer knows: start over.
    localStorage.removeItem(SESSION_KEY);
    reset();
    state.loginError = socket.auth && socket.auth.sessionID
      ? "Your session has expired: choose a username again."
      : "That username is not accepted (1 to 64 characters).";
    state.screen = "login";
  } else if (socket.active) {
    state.connection = "reconnecting";
  }
});

socket.on("session", ({ sessionID, userID }) => {
  // Reconnections (and reloads) use the session, not the username.
  socket.auth = { sessionID };
  localStorage.setItem(SESSION_KEY, sessionID);
  socket.userID = userID;
});

socket.on("users", (users) => {
  for (const u of users) {
    const history = u.messages.map(toLocal);
    const existing = findUser(u.userID);
    if (existing) {
      // Keep our own messages the server never stored (failed, or still waiting for an ack).
      const unstored = existing.messages.filter((m) => m.status !== "sent");
      existing.connected = u.connected;
      existing.username = u.username;
      existing.messages = history.concat(unstored);
    } else {
      state.users.push({
        userID: u.userID,
        username: u.username,
        connected: u.connected,
        self: u.userID === socket.userID,
        messages: history,
        hasNewMessages: false,
      });
    }
  }
  const me = self();
  if (me) me.connected = true;
  sortUsers();
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

socket.on("private message", (message) => {
  // Our own messages (sent from another tab) belong to the conversation with `to`.
  const peer = message.from === socket.userID ? message.to : message.from;
  // A peer we do not know: another tab of ours opened this conversation (from a search); the
  // server introduces a new sender with `user connected` first, so this is our own message.
  const user = findUser(peer) || addUser({ userID: peer, username: `user ${peer.slice(0, 8)}…`, connected: false });
  addIncoming(user, message);
});
