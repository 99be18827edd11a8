// A flood of garbage handshakes must not lock legitimate users out, let any garbage in, or
// leave the node sick or bloated. Latency and CPU figures are printed, not asserted: speed is
// measured by benchmarks; here it only helps a reader judge a run.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { io } from "socket.io-client";
import { startCluster } from "./harness.mjs";

const LEGIT = 20;
const ATTEMPTS = 2000;
const WORKERS = 50;
const FLOOD_MS = 5000; // attempts are paced over this long...
const FLOOD_DEADLINE_MS = 60000; // ...and a stuck flood gives up (and fails) after this
const ATTEMPT_TIMEOUT_MS = 8000;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// Deterministic junk (a failure can be replayed): xorshift32.
let seed = 0x2545f491;
const rand = (n) => {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
};
const hex = (n) => Array.from({ length: n }, () => "0123456789abcdef"[rand(16)]).join("");
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
const nest = (depth) => (depth === 0 ? { username: "deep" } : { a: nest(depth - 1) });

// Every shape here must be refused: none names a stored session or a valid username.
function garbage(publicIDs) {
  const kinds = [
    () => rand(1e9), () => "just a string", () => true, () => [1, "two", { three: 3 }],
    () => ({ username: "x".repeat(50 * 1024) }), // far above the 64-character limit
    () => ({ sessionID: "s".repeat(50 * 1024) }),
    () => ({ username: "y".repeat(65) }), () => ({ username: "   " }), () => ({ username: "bell\u0007" }),
    () => ({ username: 12345 }), () => ({ username: ["alice"] }), () => ({ username: { toString: "alice" } }),
    () => ({ usernam: "typo" }), () => ({}),
    () => nest(200), // deeper than serde_json's recursion limit
    () => ({ sessionID: uuid() }), () => ({ sessionID: hex(16) }), () => ({ sessionID: "*" }),
    () => ({ sessionID: "session:*" }), () => ({ sessionID: "" }), () => ({ sessionID: { $ne: null } }),
    () => ({ sessionID: publicIDs[rand(publicIDs.length)] }), // a userID is public, never a key
  ];
  return kinds[rand(kinds.length)]();
}

// One raw socket.io-client per attempt, no reconnection: the outcome is what the server said.
function attempt(url, auth, transports) {
  return new Promise((resolve) => {
    const s = io(url, { auth, transports, upgrade: false, forceNew: true, reconnection: false, timeout: ATTEMPT_TIMEOUT_MS });
    const timer = setTimeout(() => finish("no answer"), ATTEMPT_TIMEOUT_MS + 1000);
    function finish(outcome) {
      clearTimeout(timer);
      resolve(outcome); // first: disconnect() below re-enters with "io client disconnect"
      s.disconnect();
    }
    s.on("connect_error", (err) => finish(`connect_error: ${err.message}`));
    s.on("session", () => finish("session"));
    s.on("disconnect", (reason) => finish(`disconnect: ${reason}`));
  });
}

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const rssKB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const CLK_TCK = (() => {
  try { return Number(execFileSync("getconf", ["CLK_TCK"]).toString()) || 100; } catch { return 100; }
})();
// utime + stime, fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name).
const cpuSeconds = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};

describe("a flood of garbage handshakes", () => {
  let cluster, url, pid;
  const legitIDs = new Set();
  let seq = 0;

  before(async () => {
    cluster = await startCluster({ nodes: 1, name: "flood" });
    url = cluster.nodes[0].url;
    pid = cluster.nodes[0].child.pid;
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  // LEGIT users connect at once (latency: io() to `users`), then each sends two acked
  // messages to the next one in a ring; every acked message must arrive.
  async function legitRound(label) {
    const started = Date.now();
    const clients = await Promise.all(Array.from({ length: LEGIT }, async (_, i) => {
      const t0 = Date.now();
      const c = cluster.client(0, { transports: i % 4 === 0 ? ["polling"] : ["websocket"], auth: { username: `${label}-${++seq}` } });
      c.session = await c.next("session");
      c.users = await c.next("users");
      c.latency = Date.now() - t0;
      legitIDs.add(c.session.userID);
      return c;
    }));
    const acked = [];
    await Promise.all(clients.map(async (c, i) => {
      const to = clients[(i + 1) % LEGIT];
      for (const n of [1, 2]) {
        const ack = await c.emitWithAck("private message", { content: `${label} ${i}#${n}`, to: to.session.userID });
        assert.ok(ack.message, `${label} ${i}#${n}: ${JSON.stringify(ack)}`);
        acked.push([to, ack.message.id]);
      }
    }));
    for (const [to, id] of acked) await to.next("private message", { filter: (m) => m.id === id });
    for (const c of clients) c.close();
    return { latencies: clients.map((c) => c.latency), acked: acked.length, ms: Date.now() - started };
  }

  test("legitimate users get through a garbage flood; no garbage gets in; the node stays well", async (t) => {
    await legitRound("warmup"); // first connections pay for lazy set-up on both sides
    const quiet = await legitRound("quiet");
    assert.equal(quiet.acked, 2 * LEGIT);
    const publicIDs = [...legitIDs];
    await delay(500);
    const rssBefore = rssKB(pid);
    const cpuBefore = cpuSeconds(pid);

    // The flood: WORKERS loops, attempt k of worker w due at k * (FLOOD_MS / per-worker count).
    const outcomes = [];
    const floodStart = Date.now();
    const perWorker = ATTEMPTS / WORKERS;
    const flood = Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      for (let k = 0; k < perWorker && Date.now() - floodStart < FLOOD_DEADLINE_MS; k++) {
        const due = floodStart + (k * FLOOD_MS) / perWorker + (w * FLOOD_MS) / ATTEMPTS;
        if (due > Date.now()) await delay(due - Date.now());
        const auth = garbage(publicIDs);
        const outcome = await attempt(url, auth, rand(10) === 0 ? ["polling"] : ["websocket"]);
        outcomes.push({ outcome, auth: JSON.stringify(auth)?.slice(0, 80) });
      }
    }));
    await delay(1000); // legitimate users arrive mid-flood
    const loud = await legitRound("loud");
    const loudDuringFlood = Date.now() - floodStart < FLOOD_MS;
    await flood;
    const floodMs = Date.now() - floodStart;
    const cpuFlood = cpuSeconds(pid) - cpuBefore;

    assert.equal(loud.acked, 2 * LEGIT);
    assert.equal(outcomes.length, ATTEMPTS, `only ${outcomes.length} attempts within ${FLOOD_DEADLINE_MS} ms`);
    const tally = {};
    for (const { outcome } of outcomes) tally[outcome] = (tally[outcome] || 0) + 1;
    const admitted = outcomes.filter((o) => !o.outcome.startsWith("connect_error"));
    assert.deepEqual(admitted.slice(0, 5), [], `garbage not refused: ${JSON.stringify(tally)}`);
    assert.deepEqual(Object.keys(tally), ["connect_error: invalid username"]);

    // Healthy, and no garbage became a session (only when this test owns its Redis).
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    if (cluster.redis) {
      const check = cluster.client(0, { auth: { username: "after-the-flood" } });
      const me = await check.next("session");
      const listed = (await check.next("users")).map((u) => u.userID).filter((id) => id !== me.userID);
      assert.deepEqual(listed.filter((id) => !legitIDs.has(id)), [], "a garbage handshake was stored as a session");
      assert.equal(listed.length, 3 * LEGIT);
    }
    await delay(1000); // let closed sockets be reaped before measuring
    const rssAfter = rssKB(pid);
    assert.ok(rssAfter < 2 * rssBefore + 50 * 1024, `RSS ${rssBefore} kB before, ${rssAfter} kB after`);

    const fmt = ({ latencies }) => `p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms`;
    for (const line of [
      `legit connect latency, quiet: ${fmt(quiet)} (${LEGIT} users)`,
      `legit connect latency, flood: ${fmt(loud)} (${LEGIT} users; round ${loud.ms} ms, ${loudDuringFlood ? "inside" : "OUTLASTED"} the flood)`,
      `flood: ${outcomes.length} garbage attempts in ${floodMs} ms, ${JSON.stringify(tally)}`,
      `node CPU during the flood: ${cpuFlood.toFixed(2)} s (utime+stime, ${CLK_TCK} ticks/s)`,
      `node RSS: ${(rssBefore / 1024).toFixed(1)} MB before, ${(rssAfter / 1024).toFixed(1)} MB after`,
    ]) t.diagnostic(line);
  });
});
