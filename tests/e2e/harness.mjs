// Test harness: a throw-away Redis, N nodes of the Rust server sharing it, and a
// socket.io-client wrapper that records every event so no test can miss one that
// arrived before it started waiting.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "../..");
export const ARTIFACTS = path.join(HERE, "artifacts");
export const SERVER_BIN = process.env.SERVER_BIN || path.join(REPO, "target/debug/privmsg-server");
export const CLIENT_DIR = path.join(REPO, "client/dist");
export const WAIT_MS = 8000;

fs.mkdirSync(ARTIFACTS, { recursive: true });

// Safety net: whatever happens, never leave a redis-server or server node behind.
const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll `check` until it returns a truthy value; throw `what` after `timeout` ms.
export async function pollUntil(check, what, timeout = 20000, child) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited with ${child.exitCode}`);
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms: ${what}`);
    await delay(100);
  }
}

function spawnLogged(cmd, args, { env, logName }) {
  const logFile = path.join(ARTIFACTS, `${logName}.log`);
  const log = fs.createWriteStream(logFile);
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  child.on("error", (err) => log.write(`[harness] spawn error: ${err.message}\n`));
  child.on("exit", (code, signal) => log.write(`[harness] exited: code ${code}, signal ${signal}\n`));
  child.on("close", () => log.end());
  children.add(child);
  child.on("exit", () => children.delete(child));
  return { child, logFile };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  // Longer than the server's own 10 s drain, so its log shows how that ended.
  const timer = setTimeout(() => child.kill("SIGKILL"), 12000);
  await exited;
  clearTimeout(timer);
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.setTimeout(1000, () => sock.destroy());
    sock.on("error", () => resolve(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      sock.end();
    });
    sock.on("close", () => resolve(false));
  });
}

async function startRedis(name) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "privmsg-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  const { child } = spawnLogged("redis-server", args, { env: process.env, logName: `${name}-redis` });
  await pollUntil(() => redisPing(port), `redis-server on port ${port}`, 10000, child);
  return { url: `redis://127.0.0.1:${port}`, child, dir };
}

// A Redis Cluster of three masters (no replicas), each a throw-away redis-server.
async function startRedisCluster(name) {
  const nodes = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "privmsg-redis-cluster-"));
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
      const { child } = spawnLogged("redis-server", args, { env: process.env, logName: `${name}-redis${i}` });
      nodes.push({ port, child, dir });
      await pollUntil(() => redisPing(port), `cluster node on port ${port}`, 10000, child);
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    const { child: create } = spawnLogged("redis-cli",
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      { env: process.env, logName: `${name}-cluster-create` });
    const code = await new Promise((r) => create.once("exit", r));
    if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);
    for (const node of nodes) {
      await pollUntil(() => clusterOk(node.port), `cluster state ok on port ${node.port}`, 20000, node.child);
    }
    return { nodes, addresses };
  } catch (err) {
    for (const node of nodes) await stopChild(node.child);
    throw err;
  }
}

function clusterOk(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.setTimeout(1000, () => sock.destroy());
    let text = "";
    sock.on("error", () => resolve(false));
    sock.on("connect", () => sock.write("CLUSTER INFO\r\n"));
    sock.on("data", (d) => {
      text += d.toString();
      if (text.includes("cluster_known_nodes")) {
        resolve(text.includes("cluster_state:ok"));
        sock.end();
      }
    });
    sock.on("close", () => resolve(false));
  });
}

// `port` is given when restarting a node in place; its log then goes to a new file.
async function startNode(logName, redisUrl, extraEnv, port) {
  port = port || (await freePort());
  // A REDIS_CLUSTER_NODES from the shell would win over REDIS_URL and send the node to it.
  const { REDIS_CLUSTER_NODES: _shellCluster, ...shellEnv } = process.env;
  const env = {
    ...shellEnv,
    PORT: String(port),
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    CLIENT_DIR,
    RUST_LOG: "info",
    // Every test client comes from 127.0.0.1; no test here reads /metrics, and two nodes
    // could not share its default port.
    NEW_SESSIONS_PER_MINUTE: "1000000",
    NEW_SESSIONS_BURST: "1000000",
    METRICS_ADDR: "off",
    ...extraEnv,
  };
  const { child, logFile } = spawnLogged(SERVER_BIN, [], { env, logName });
  const url = `http://127.0.0.1:${port}`;
  await pollUntil(async () => (await fetch(`${url}/healthz`)).status === 200, `${url}/healthz`, 20000, child);
  return { url, port, child, logFile };
}

// Start Redis (unless TEST_REDIS_URL is set: a test-only name, so that the server's own
// REDIS_URL in a developer's shell never points the suite at real data) and `nodes` server
// nodes. Always call stop().
// With `redisCluster`, the nodes share a Redis Cluster instead (its seeds in
// `cluster.redisNodes`, as `host:port`).
export async function startCluster({ nodes = 2, name = "cluster", env = {}, redisCluster = false } = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`server binary not found at ${SERVER_BIN}: run \`cargo build\` or set SERVER_BIN`);
  }
  const cluster = { redis: null, nodes: [], clients: new Set() };
  cluster.stop = async () => {
    for (const c of cluster.clients) c.close();
    await Promise.all(cluster.nodes.map((n) => stopChild(n.child)));
    if (cluster.redis) {
      await stopChild(cluster.redis.child);
      fs.rmSync(cluster.redis.dir, { recursive: true, force: true });
    }
    for (const node of cluster.redisCluster?.nodes || []) {
      await stopChild(node.child);
      fs.rmSync(node.dir, { recursive: true, force: true });
    }
  };
  try {
    if (redisCluster) {
      cluster.redisCluster = await startRedisCluster(name);
      cluster.redisNodes = cluster.redisCluster.addresses;
      env = { ...env, REDIS_CLUSTER_NODES: cluster.redisNodes.join(",") };
    } else {
      cluster.redis = process.env.TEST_REDIS_URL ? null : await startRedis(name);
      cluster.redisUrl = process.env.TEST_REDIS_URL || cluster.redis.url;
    }
    for (let i = 1; i <= nodes; i++) cluster.nodes.push(await startNode(`${name}-node${i}`, cluster.redisUrl, env));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  // Stop node `i` (0-based), then start it again on the same port (same URL for clients).
  let restarts = 0;
  cluster.stopNode = (i) => stopChild(cluster.nodes[i].child);
  cluster.restartNode = async (i) => {
    const old = cluster.nodes[i];
    await stopChild(old.child);
    cluster.nodes[i] = await startNode(`${name}-node${i + 1}-restart${++restarts}`, cluster.redisUrl, env, old.port);
  };
  // A client that the cluster closes on stop().
  cluster.client = (nodeIndex, opts) => {
    const c = new Client(cluster.nodes[nodeIndex].url, opts);
    cluster.clients.add(c);
    return c;
  };
  return cluster;
}

// socket.io-client with every received event recorded in order.
export class Client {
  // `extraHeaders` (e.g. a browser's Origin) goes out on both transports from Node.
  constructor(url, { auth, transports, upgrade = true, extraHeaders } = {}) {
    this.events = []; // [{ event, args }], unconsumed
    this.waiters = [];
    this.socket = io(url, {
      auth,
      transports,
      upgrade,
      extraHeaders,
      forceNew: true,
      reconnection: false, // a test must see a dropped connection, not a silent retry
      timeout: WAIT_MS,
    });
    this.socket.onAny((event, ...args) => this.#record(event, args));
    for (const event of ["connect", "connect_error", "disconnect"]) {
      this.socket.on(event, (...args) => this.#record(event, args));
    }
  }

  #record(event, args) {
    const entry = { event, args };
    const waiter = this.waiters.find((w) => w.event === event && w.filter(...args));
    if (waiter) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(args[0]);
    } else {
      this.events.push(entry);
    }
  }

  // Resolve with the first argument of the next `event` (optionally matching `filter`).
  next(event, { timeout = WAIT_MS, filter = () => true } = {}) {
    const i = this.events.findIndex((e) => e.event === event && filter(...e.args));
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0].args[0]);
    return new Promise((resolve, reject) => {
      const waiter = { event, filter, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at < 0) return;
        this.waiters.splice(at, 1);
        const seen = this.events.map((e) => e.event).join(", ") || "nothing";
        reject(new Error(`no "${event}" within ${timeout} ms (unconsumed events: ${seen})`));
      }, timeout);
    });
  }

  // Unconsumed events named `event` received so far.
  received(event) {
    return this.events.filter((e) => e.event === event).map((e) => e.args[0]);
  }

  emitWithAck(event, payload, timeout = WAIT_MS) {
    return this.socket.timeout(timeout).emitWithAck(event, payload);
  }

  get transport() {
    return this.socket.io.engine && this.socket.io.engine.transport.name;
  }

  close() {
    this.socket.disconnect();
  }
}
