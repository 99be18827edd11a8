// A backend's `@socket.io/redis-emitter` beside a benchmark run: waits until USERS sessions are
// stored on REDIS_URL, then emits `notice` to a random one of their users at RATE per second for
// SECS seconds (each to one user's room, as `emitter.to(userID).emit(...)`), and prints
// `{ emitted, secs }` as JSON. Run by `benches/run.sh --scenarios emitter`; the packages come
// from tests/e2e (its `npm ci`).
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/e2e/package.json", import.meta.url));
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const users = Number(process.env.USERS ?? 200);
const rate = Number(process.env.RATE ?? 1000);
const secs = Number(process.env.SECS ?? 20);

const redis = createClient({ url });
await redis.connect();

// The users of the run, once they are all stored (the load generator is still connecting).
async function storedUsers() {
  const ids = new Set();
  for await (const key of redis.scanIterator({ MATCH: "session:*", COUNT: 1000 })) {
    const id = await redis.hGet(key, "userID");
    if (id) ids.add(id);
  }
  return [...ids];
}
let ids = [];
const deadline = Date.now() + 180_000;
while ((ids = await storedUsers()).length < users) {
  if (Date.now() > deadline) {
    console.error(`emitter-load: ${ids.length} of ${users} users stored after 180 s`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}

const emitter = new Emitter(redis);
const start = Date.now();
let emitted = 0;
// Stopped early (the run it stands beside is over): say how far it got.
process.on("SIGTERM", () => {
  console.log(JSON.stringify({ emitted, secs: (Date.now() - start) / 1000, rate }));
  process.exit(0);
});
while (Date.now() - start < secs * 1000) {
  const due = Math.floor(((Date.now() - start) / 1000) * rate);
  for (; emitted < due; emitted++) {
    const to = ids[Math.floor(Math.random() * ids.length)];
    emitter.to(to).emit("notice", { n: emitted, at: Date.now() });
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}
console.log(JSON.stringify({ emitted, secs: (Date.now() - start) / 1000, rate }));
await redis.quit();
