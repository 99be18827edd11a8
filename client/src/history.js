// Conversation history (docs/protocol.md, "Client to server", `fetch messages`): older pages via `fetch messages`,
// and the history `users` sends again on a reconnect, merged with what is already shown.
import socket from "./socket";
import { toLocal } from "./messages";

const FETCH_TIMEOUT_MS = 5000; // `fetch messages`: a server without it never answers
const PAGE_SIZE = 20; // messages per `fetch messages` page (the server allows 1..=100)
// `fetch messages` refusals worth another try later; any other `{ error }` stops paging back.
const TRANSIENT_PAGE_ERROR = /rate limited|unavailable/;

// Fetches the page just older than the oldest message shown and prepends it. Resolves to the
// number of messages added. Stops for good (more = false) when the server says there is no
// more, answers `{ error }` (other than a passing one: rate limit, storage down), or does not
// answer in time (a server without the feature never does).
export function loadOlder(user) {
  if (user.loadingOlder || user.more === false) return Promise.resolve(0);
  const oldest = user.messages[0];
  if (oldest && !oldest.id) {
    // Nothing to page back from (a conversation without ids comes whole from the Node server).
    user.more = false;
    return Promise.resolve(0);
  }
  // An empty conversation (HISTORY_ON_CONNECT=0, or one opened from a search): its newest page.
  const request = oldest
    ? { with: user.userID, before: oldest.id, limit: PAGE_SIZE }
    : { with: user.userID, limit: PAGE_SIZE };
  user.loadingOlder = true;
  return new Promise((resolve) => {
    socket.timeout(FETCH_TIMEOUT_MS).emit("fetch messages", request, (err, res) => {
      user.loadingOlder = false;
      const passing = err
        ? !socket.connected // no answer because we were cut off, not because the server cannot page
        : Boolean(res && typeof res.error === "string" && TRANSIENT_PAGE_ERROR.test(res.error));
      if (passing) {
        resolve(0); // try again on the next scroll up (or the "load older" button)
        return;
      }
      if (err || !res || !Array.isArray(res.messages)) {
        user.more = false;
        resolve(0);
        return;
      }
      const known = new Set(user.messages.map((m) => m.id).filter(Boolean));
      const page = res.messages.filter((m) => !(m.id && known.has(m.id))).map(toLocal);
      // The page is older than what we asked from, if that is still the oldest message shown
      // (a resync may have replaced the list meanwhile); than anything, if we had none.
      if (oldest && user.messages[0] !== oldest && user.messages[0]?.id !== oldest.id) {
        resolve(0);
        return;
      }
      user.messages = page.concat(user.messages);
      user.more = Boolean(res.more) && page.length > 0;
      resolve(page.length);
    });
  });
}

// `users` again (a reconnect or reload): `history` (already local entries) replaces the messages
// `user` shows, save what it does not carry: our unstored messages, and older pages it joins.
export function resyncHistory(user, history) {
  // Keep our own messages the server never stored (failed, or still waiting for an ack).
  const unstored = user.messages.filter((m) => m.status !== "sent");
  // Older pages fetched before (HISTORY_ON_CONNECT): kept if the new history joins them.
  const joins = history.length && history[0].id
    ? user.messages.findIndex((m) => m.id === history[0].id) : -1;
  const older = joins > 0 ? user.messages.slice(0, joins).filter((m) => m.status === "sent") : [];
  user.messages = older.concat(history, unstored);
  if (joins < 0) user.more = null; // older pages dropped: page back again
}
