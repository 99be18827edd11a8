// Signing in and out (docs/protocol.md, "Handshake" for AUTH=jwt): the username, token
// and sessionID flows, what is kept in localStorage, and the `auth` the socket connects with.
import socket from "./socket";
import { state } from "./state";
import { resetTyping } from "./typing";
import { resetReads } from "./reads";
import { clearSearch } from "./search";

const SESSION_KEY = "sessionID";
const TOKEN_KEY = "token"; // AUTH=jwt (docs/protocol.md, "Handshake")

// Another user (or none) from now on: nothing of the previous one stays.
function reset() {
  resetReads();
  resetTyping();
  state.users = [];
  state.selectedUserID = null;
  clearSearch();
  socket.userID = undefined;
}

// A token in the page's address (`?token=...`) is kept in localStorage and taken out of the
// address, so that it is neither bookmarked nor shown; the stored one is used after a reload.
function tokenFromUrl() {
  if (typeof window === "undefined") return null;
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return null;
  url.searchParams.delete("token");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  return token.trim();
}

// Keeps `token` and connects with it (AUTH=jwt). A different token may be another user: the
// stored session is then not sent (the server finds the token's own session anyway).
function connectWithToken(token) {
  if (token !== localStorage.getItem(TOKEN_KEY)) localStorage.removeItem(SESSION_KEY);
  localStorage.setItem(TOKEN_KEY, token);
  const sessionID = localStorage.getItem(SESSION_KEY);
  reset();
  state.tokenError = "";
  state.screen = "chat";
  state.connection = "connecting";
  socket.auth = sessionID ? { token, sessionID } : { token };
  socket.connect();
}

export function start() {
  const token = tokenFromUrl() || localStorage.getItem(TOKEN_KEY);
  if (token) {
    connectWithToken(token);
    return;
  }
  const sessionID = localStorage.getItem(SESSION_KEY);
  if (sessionID) {
    // A stored session: reconnect with it and skip the username screen.
    state.screen = "chat";
    socket.auth = { sessionID };
    socket.connect();
  }
}

// The token form's submit.
export function loginWithToken(token) {
  if (token.trim()) connectWithToken(token.trim());
}

// The token form's way back to the username flow (a server that is not in AUTH=jwt).
export function useUsername() {
  localStorage.removeItem(TOKEN_KEY);
  state.tokenError = "";
  state.screen = "login";
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
  const withToken = Boolean(socket.auth && socket.auth.token);
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem(TOKEN_KEY);
  socket.disconnect();
  socket.auth = {};
  reset();
  state.screen = withToken ? "token" : "login";
}

// --- server events -------------------------------------------------------------------

socket.on("connect_error", (err) => {
  if (err.message === "invalid token") {
    // AUTH=jwt: the token is missing, malformed, expired or badly signed. Ask for another.
    const hadToken = Boolean(socket.auth && socket.auth.token);
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(SESSION_KEY);
    reset();
    socket.auth = {};
    state.tokenError = hadToken
      ? "This token was refused (invalid or expired): paste a new one."
      : "This server signs you in with a token: paste yours.";
    state.screen = "token";
  } else if (err.message === "invalid username") {
    // A server that does not take tokens (AUTH=session): back to the username flow.
    localStorage.removeItem(TOKEN_KEY);
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
  // Reconnections (and reloads) use the session, not the username (and the token, if any).
  const token = socket.auth && socket.auth.token;
  socket.auth = token ? { token, sessionID } : { sessionID };
  localStorage.setItem(SESSION_KEY, sessionID);
  socket.userID = userID;
});
