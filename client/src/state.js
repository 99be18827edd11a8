// The reactive state the components render, and the lookups every other module needs.
// Kept here, below everything else, so that no module has to import chat.js back.
import { reactive } from "vue";

export const state = reactive({
  // "login" (choose a username), "token" (paste a token, AUTH=jwt) or "chat"
  screen: "login",
  loginError: "",
  tokenError: "",
  // "connecting" | "connected" | "reconnecting" | "offline"
  connection: "connecting",
  users: [],
  selectedUserID: null,
  // "find someone to talk to": the last query's answer (`search users`)
  search: { query: "", results: [], error: "", pending: false },
  // The server answered an edit with "editing is off" (EDIT_WINDOW_SECS=0): "Edit" is not offered.
  editingOff: false,
});

// Our own entry in the users list (there is none before the first `users`).
export function selfUser() {
  return state.users.find((u) => u.self);
}

export function findUser(userID) {
  return state.users.find((u) => u.userID === userID);
}
