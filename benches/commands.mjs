// Redis commands per message, and what a conversation costs in memory and per page: two nodes,
// user A on node 1 writing to B (on node 2) and to C (on node 1), acknowledged, each delivery
// awaited; `INFO commandstats` summed over every master, reset just before the messages; the
// same for `typing`; then `MEMORY USAGE` of the histories and the conversation indexes; then
// the commands of a first and a second `fetch messages` page; then A to B again, indexed. Command counts, not time: meant for a shared machine.
//
//   SERVER_BIN=target/debug/privmsg-server node benches/commands.mjs            # standalone
//   REDIS_CLUSTER_NODES=redis://127.0.0.1:7000,... TEST_REDIS_URL=redis://127.0.0.1:7000 \
//     SERVER_BIN=... node benches/commands.mjs                                   # a cluster
//
// Run from tests/e2e (its node_modules): `cd tests/e2e && node ../../benches/commands.mjs`.
import { execFileSync } from "node:child_process";
import { startCluster } from "../tests/e2e/harness.mjs";

const MESSAGES = Number(process.env.MESSAGES || 300);
const clusterNodes = process.env.REDIS_CLUSTER_NODES;

function cli(url, ...args) {
  return execFileSync("redis-cli", ["-u", url, ...args], { encoding: "utf8" });
}

// Every master (a cluster's, or the one Redis).
function masters(url) {
  if (!clusterNodes) return [url];
  return cli(url, "CLUSTER", "NODES")
    .split("\n")
    .filter((line) => line.includes("master") && !line.includes("fail"))
    .map((line) => `redis://${line.split(" ")[1].split("@")[0]}`);
}

function commandstats(urls) {
  const calls = {};
  for (const url of urls) {
    for (const line of cli(url, "INFO", "commandstats").split("\n")) {
      const m = line.match(/^cmdstat_([^:]+):calls=(\d+)/);
      if (m) calls[m[1]] = (calls[m[1]] || 0) + Number(m[2]);
    }
  }
  return calls;
}

function reset(urls) {
  for (const url of urls) cli(url, "CONFIG", "RESETSTAT");
}

function report(title, calls, per) {
  const ignore = new Set(["info", "config|resetstat", "config", "ping", "cluster|nodes", "cluster|slots", "memory|usage", "scan", "keys", "cluster|info", "cluster|myid", "cluster|shards", "client|setinfo", "hello"]);
  const rows = Object.entries(calls).filter(([cmd]) => !ignore.has(cmd)).sort();
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  console.log(`\n${title} (per ${per === 1 ? "call" : `message, ${per} messages`}):`);
  for (const [cmd, n] of rows) console.log(`  ${cmd.padEnd(24)} ${(n / per).toFixed(2)}`);
  console.log(`  ${"total".padEnd(24)} ${(total / per).toFixed(2)}`);
}

const env = { RATE_LIMIT_PER_SEC: "100000", RATE_LIMIT_BURST: "100000" };
if (clusterNodes) env.REDIS_CLUSTER_NODES = clusterNodes;
const cluster = await startCluster({ nodes: 2, name: "commands", env });
try {
  const urls = masters(cluster.redisUrl);
  const join = async (node, username) => {
    const c = cluster.client(node, { auth: { username } });
    const session = await c.next("session");
    await c.next("users");
    return { c, id: session.userID };
  };
  const a = await join(0, "alice");
  const b = await join(1, "bob");
  const c = await join(0, "carol");

  reset(urls);
  for (let i = 0; i < MESSAGES; i++) {
    const to = i % 2 === 0 ? b : c;
    const reply = await a.c.emitWithAck("private message", { content: `m${i}`, to: to.id });
    if (!reply.message) throw new Error(`refused: ${JSON.stringify(reply)}`);
    await to.c.next("private message", { filter: (m) => m.id === reply.message.id });
  }
  report("commands", commandstats(urls), MESSAGES);

  // Announcements, which no write carries: typing to B (another node) and to C (this node).
  reset(urls);
  for (let i = 0; i < MESSAGES; i++) {
    const to = i % 2 === 0 ? b : c;
    const seen = to.c.next("typing", { filter: (t) => t.from === a.id });
    a.c.socket.emit("typing", { to: to.id });
    await seen;
  }
  report("typing", commandstats(urls), MESSAGES);

  // The keys of A's two conversations, wherever they are.
  console.log("\nmemory (MEMORY USAGE, bytes):");
  for (const url of urls) {
    const keys = cli(url, "--scan", "--pattern", "*").split("\n").filter((k) => k.startsWith("messages:") || k.startsWith("privmsg:conversation:"));
    for (const key of keys) console.log(`  ${key.slice(0, 40).padEnd(42)} ${cli(url, "MEMORY", "USAGE", key).trim()}`);
  }

  for (const [n, label] of [[1, "first page ever"], [2, "second page"]]) {
    reset(urls);
    const page = await a.c.emitWithAck("fetch messages", { with: b.id, limit: 50 });
    if (!page.messages || page.messages.length !== 50) throw new Error(`page ${n}: ${JSON.stringify(page).slice(0, 200)}`);
    report(`fetch messages, ${label}`, commandstats(urls), 1);
  }

  // A→B again, now that their conversation has an index (C's has none): what a message costs
  // in a conversation that pages or read marks use.
  reset(urls);
  for (let i = 0; i < MESSAGES; i++) {
    const reply = await a.c.emitWithAck("private message", { content: `n${i}`, to: b.id });
    if (!reply.message) throw new Error(`refused: ${JSON.stringify(reply)}`);
    await b.c.next("private message", { filter: (m) => m.id === reply.message.id });
  }
  report("commands, A to B with its index", commandstats(urls), MESSAGES);
} finally {
  await cluster.stop();
}
