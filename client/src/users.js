// The users list: its entries, their order, adding one, and opening a conversation.
import socket from "./socket";
import { state, findUser } from "./state";
import { scheduleMarkRead } from "./reads";
import { isMarkedBlocked } from "./blocks";

export function sortUsers() {
  // Yourself first, then everybody else by name.
  state.users.sort((a, b) => {
    if (a.self) return -1;
    if (b.self) return 1;
    return a.username.localeCompare(b.username);
  });
}

// A user entry as this client keeps it; `u` is a `users` entry, `user connected` or a search result.
export function newUser(u, messages = []) {
  const unread = u.userID !== socket.userID && Number(u.unread) > 0 ? Number(u.unread) : 0;
  return {
    userID: u.userID,
    username: u.username,
    connected: Boolean(u.connected),
    self: u.userID === socket.userID,
    messages,
    hasNewMessages: unread > 0,
    // Messages from this user to me that I have not read (`unread` in `users`, then counted here).
    unread,
    // How far this user has read my messages to it (`readUpTo`, then `messages read`): read ticks.
    readUpTo: u.readUpTo || null,
    // The last `upTo` this client sent for this conversation, so it is sent once.
    sentReadUpTo: null,
    typing: false,
    // Older history (`fetch messages`): null = not asked yet, true = there is more, false = none.
    more: null,
    loadingOlder: false,
    // We block this user (`blocked: true` in `users` or a search result, then our acks).
    blocked: isMarkedBlocked(u),
    blockPending: false,
    blockError: "",
  };
}

// Adds a user this client did not know yet (a search result, or the peer of a conversation that
// another tab of ours started) to the list, without its history: the server sends history in
// `users` only, and a new conversation has none yet.
export function addUser(u) {
  const existing = findUser(u.userID);
  if (existing) return existing;
  state.users.push(newUser(u));
  sortUsers();
  return findUser(u.userID);
}

// Opens the conversation with `userID`: what it shows is read.
export function selectUser(userID) {
  state.selectedUserID = userID;
  const user = findUser(userID);
  if (user) scheduleMarkRead(user);
}
