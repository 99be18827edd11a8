import { io } from "socket.io-client";

// In production the Rust server serves this client, so the socket goes to the same
// origin (URL undefined). The Vite dev server (:8080) has no Socket.IO endpoint, so
// in dev we point at the server, http://localhost:3000 unless VITE_SERVER_URL says otherwise.
const URL = import.meta.env.VITE_SERVER_URL ||
  (import.meta.env.DEV ? "http://localhost:3000" : undefined);

// autoConnect off: we connect only once we know the username or stored sessionID.
const socket = io(URL, { autoConnect: false });

// How long an acknowledged request (`private message`, `search users`) may wait for its answer.
export const ACK_TIMEOUT_MS = 10000;

if (import.meta.env.DEV) {
  socket.onAny((event, ...args) => console.log(event, args));
}

export default socket;
