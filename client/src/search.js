// "Find someone to talk to": `search users` and opening a conversation with a result.
import socket, { ACK_TIMEOUT_MS } from "./socket";
import { state } from "./state";
import { addUser, selectUser } from "./users";
import { isMarkedBlocked } from "./blocks";

export function clearSearch() {
  state.search.query = "";
  state.search.results = [];
  state.search.error = "";
  state.search.pending = false;
}

let searchSeq = 0; // answers to superseded queries are ignored

// `search users` (docs/protocol.md, "Directory scope"): usernames starting with `query`,
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
  addUser(u).blocked = isMarkedBlocked(u); // the result is the server's latest word on it
  clearSearch();
  selectUser(u.userID);
}
