// `fetch messages` latency: page 1 and page 20 (limit 50) of a 1,000-message conversation,
// measured by the official socket.io-client against one release node and its own Redis, for
// a conversation this server stored (the index) and for one the Node server wrote (no ids:
// its pages past the start come from the user's whole list). Prints the figures and the
// command that reproduces them. Not a test: nothing here asserts a speed.
//
//   cargo build --release --bin privmsg-server && (cd tests/e2e && npm install)
//   SERVER_BIN=target/release/privmsg-server node benches/pages.mjs
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import { startCluster } from "../tests/e2e/harness.mjs";

const MESSAGES = Number(process.env.PAGE_MESSAGES || 1000);
const LIMIT = 50;
const ROUNDS = Number(process.env.PAGE_ROUNDS || 300);

const cluster = await startCluster({ nodes: 1, name: "bench-pages", env: { RATE_LIMIT_PER_SEC: "0", HISTORY_ON_CONNECT: "0", RUST_LOG: "warn" } });
try {
  const connect = async (auth) => {
    const c = cluster.client(0, { auth });
    c.session = await c.next("session");
    await c.next("users");
    return c;
  };

  // Our history: 1,000 messages sent through the server.
  const a = await connect({ username: "bench-a" });
  const b = await connect({ username: "bench-b" });
  for (let i = 0; i < MESSAGES; i++) {
    const ack = await a.emitWithAck("private message", { content: `message ${i} `.padEnd(80, "x"), to: b.session.userID });
    if (!ack.message) throw new Error(JSON.stringify(ack));
  }
  const ours = await measure(b, a.session.userID);
  const cli = (...args) => execFileSync("redis-cli", ["-u", cluster.redisUrl, ...args], { maxBuffer: 1 << 26 });
  const bytes = (key) => Number(String(cli("MEMORY", "USAGE", key, "SAMPLES", "0")).trim());
  const [low, high] = [a.session.userID, b.session.userID].sort();
  const memory = {
    history: bytes(`messages:${a.session.userID}`),
    index: bytes(`privmsg:conversation:${low}:${high}`),
  };

  // The Node server's history: 1,000 id-less entries in each user's list, as it wrote them.
  const [ua, ub] = [hex16(), hex16()];
  const [sa, sb] = [hex16(), hex16()];
  cli("HSET", `session:${sa}`, "userID", ua, "username", "legacy-a", "connected", "false");
  cli("HSET", `session:${sb}`, "userID", ub, "username", "legacy-b", "connected", "false");
  const entries = [];
  for (let i = 0; i < MESSAGES; i++) entries.push(JSON.stringify({ content: `message ${i} `.padEnd(80, "x"), from: ua, to: ub }));
  cli("RPUSH", `messages:${ub}`, ...entries);
  const legacy = await measure(await connect({ sessionID: sb }), ua);

  const row = (name, m) =>
    `| ${name} | ${m.first.p50.toFixed(2)} | ${m.first.p99.toFixed(2)} | ${m.twentieth.p50.toFixed(2)} | ${m.twentieth.p99.toFixed(2)} | ${(m.twentieth.p50 / m.first.p50).toFixed(2)} |`;
  console.log(`\nfetch messages, limit ${LIMIT}, ${MESSAGES} messages, ${ROUNDS} rounds (ms, client round trip)`);
  console.log("| history | page 1 p50 | page 1 p99 | page 20 p50 | page 20 p99 | page 20 / page 1 (p50) |");
  console.log("|---|---|---|---|---|---|");
  console.log(row("stored by this server (index)", ours));
  console.log(row("written by the Node server (legacy addresses)", legacy));
  console.log(`\nthe conversation's first page ever (builds its index from the history): ${ours.opening.toFixed(2)} ms`);
  console.log(`\nRedis memory of the conversation (MEMORY USAGE): each user's history ${(memory.history / 1024).toFixed(0)} KiB, ` +
    `the index ${(memory.index / 1024).toFixed(0)} KiB (${(memory.index / memory.history).toFixed(2)}x one history)`);
  console.log(`\nreproduce: SERVER_BIN=${process.env.SERVER_BIN || "target/debug/privmsg-server"} node benches/pages.mjs`);
} finally {
  await cluster.stop();
}

function hex16() {
  return crypto.randomBytes(8).toString("hex");
}

// Walks to page 20 once (to learn its `before`), then times page 1 and page 20 alternately.
async function measure(client, peer) {
  let before, opening;
  for (let page = 1; page < 20; page++) {
    const start = process.hrtime.bigint();
    const ack = await client.emitWithAck("fetch messages", { with: peer, before, limit: LIMIT });
    // The conversation's first page ever: on a standalone Redis it reads the history and
    // builds the index (once).
    if (page === 1) opening = Number(process.hrtime.bigint() - start) / 1e6;
    if (!ack.messages || ack.messages.length !== LIMIT) throw new Error(`page ${page}: ${JSON.stringify(ack).slice(0, 200)}`);
    before = ack.messages[0].id;
  }
  const first = [], twentieth = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [into, request] of [[first, { with: peer, limit: LIMIT }], [twentieth, { with: peer, before, limit: LIMIT }]]) {
      const start = process.hrtime.bigint();
      const ack = await client.emitWithAck("fetch messages", request);
      into.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (ack.messages?.length !== LIMIT) throw new Error(JSON.stringify(ack).slice(0, 200));
    }
  }
  return { opening, first: stats(first), twentieth: stats(twentieth) };
}

function stats(samples) {
  const sorted = [...samples].sort((x, y) => x - y);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}
