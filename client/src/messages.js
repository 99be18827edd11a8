// Messages: the local entries for them, sending ours (acked) and receiving `private message`.
import socket, { ACK_TIMEOUT_MS } from "./socket";
import { state, findUser } from "./state";
import { stopTyping } from "./typing";
import { countIncoming } from "./reads";
import { addUser } from "./users";

let localKey = 0; // stable v-for keys for messages that have no server id yet

// A stored message as this client keeps it: a stable key, whether it is ours, status "sent"
// (sendMessage's own entries are "pending" until acked, then "sent" or "failed").
export function toLocal(message) {
  return {
    ...message,
    key: message.id || `local-${++localKey}`,
    fromSelf: message.from === socket.userID,
    status: "sent",
  };
}

// A `private message` to or from us, live: shown once, and read or counted.
function addIncoming(user, message) {
  // The same stored message can reach us twice (history resync + live event): dedupe by id.
  if (message.id && user.messages.some((m) => m.id === message.id)) return;
  user.messages.push(toLocal(message));
  if (message.from === socket.userID) return; // ours, from another tab
  stopTyping(user); // what they were typing has arrived
  countIncoming(user);
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

socket.on("private message", (message) => {
  // Our own messages (sent from another tab) belong to the conversation with `to`.
  const peer = message.from === socket.userID ? message.to : message.from;
  // A peer we do not know: another tab of ours opened this conversation (from a search); the
  // server introduces a new sender with `user connected` first, so this is our own message.
  const user = findUser(peer) || addUser({ userID: peer, username: `user ${peer.slice(0, 8)}…`, connected: false });
  addIncoming(user, message);
});
