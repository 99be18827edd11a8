// Secrets and origins: a sessionID is a bearer token (docs/protocol.md), so it may reach its owner in
// `session` and nowhere else: not another user's socket (events, acks, refusals), not an
// eavesdropping "eve" on either node, not a log line even at RUST_LOG=debug. And a browser page
// on a foreign origin must not open a socket (a cross-origin WebSocket needs no CORS preflight).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startCluster } from "./harness.mjs";

const EVIL = "http://evil.example";
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

describe("sessionIDs stay with their owner", () => {
  let cluster;
  const sockets = []; // every Client of the scenario: { c, owner } (owner: a sessionID or null)
  const users = {}; // label -> { sessionID, userID }
  let seq = 0;

  before(async () => {
    // Small limits so the scenario reaches the "too many connections" and "rate limited"
    // refusals cheaply: each is one more text that could echo a token.
    const env = { RUST_LOG: "debug", MAX_SOCKETS_PER_USER: "3", RATE_LIMIT_PER_SEC: "1", RATE_LIMIT_BURST: "5" };
    cluster = await startCluster({ nodes: 2, name: "security", env });
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  // A client whose every incoming Engine.IO packet is kept verbatim, below socket.io-client's
  // decoding: acks, refusals and events nobody listens for all land in `c.raw`.
  function open(node, opts = {}) {
    const c = cluster.client(node, { transports: ["websocket"], ...opts });
    c.raw = [];
    c.socket.io.engine.on("packet", (p) => c.raw.push(`${p.type}:${typeof p.data === "string" ? p.data : ""}`));
    c.socket.on("connect_error", (err) => c.raw.push(`connect_error:${err.message}:${JSON.stringify(err.data ?? null)}`));
    const entry = { c, owner: null };
    sockets.push(entry);
    c.entry = entry;
    return c;
  }
  async function connect(node, auth, opts) {
    const c = open(node, { ...opts, auth });
    c.session = await c.next("session");
    await c.next("users");
    c.entry.owner = c.session.sessionID;
    return c;
  }
  async function newUser(label, node, opts) {
    const c = await connect(node, { username: `${label}-${++seq}` }, opts);
    users[label] = c.session;
    return c;
  }
  const tab = (label, node, opts) => connect(node, { sessionID: users[label].sessionID }, opts);
  const send = (c, to, content) => c.emitWithAck("private message", { content, to: users[to].userID });

  test("a foreign Origin is refused on both transports; no Origin or the node's own one works", async () => {
    for (const transports of [["websocket"], ["polling"]]) {
      const evil = cluster.client(0, { transports, upgrade: false, auth: { username: "x" }, extraHeaders: { Origin: EVIL } });
      const err = await evil.next("connect_error");
      // The transport's error wraps the HTTP status: { description: 403 } or an Error naming it.
      assert.match(String(err.description?.message ?? err.description), /403/, `${transports}: ${err.message}`);
      assert.equal(evil.received("session").length, 0);
      for (const extraHeaders of [undefined, { Origin: cluster.nodes[0].url }]) {
        const ok = cluster.client(0, { transports, upgrade: false, auth: { username: "origin-ok" }, extraHeaders });
        assert.equal(typeof (await ok.next("session")).sessionID, "string", `${transports} ${JSON.stringify(extraHeaders)}`);
        ok.close();
      }
    }
    // Straight HTTP, on both nodes, with look-alike origins too.
    for (const { url, port } of cluster.nodes) {
      const handshake = `${url}/socket.io/?EIO=4&transport=polling`;
      for (const origin of [EVIL, "null", `http://127.0.0.1:${port}.evil.example`, `http://evil.example:${port}`]) {
        const res = await fetch(handshake, { headers: { Origin: origin } });
        assert.equal(res.status, 403, `Origin ${origin} on ${url}`);
      }
      assert.equal((await fetch(handshake)).status, 200, `no Origin on ${url}`);
    }
  });

  test("two nodes of traffic, bad payloads, refusals and reconnects", async () => {
    // Eve first, one tab per node, so she hears every later arrival and departure.
    const eve0 = await newUser("eve", 0);
    const eve1 = await tab("eve", 1, { transports: ["polling"], upgrade: false });
    const a1 = await newUser("alice", 0);
    const a2 = await tab("alice", 1);
    const b = await newUser("bob", 1);
    const carol = await newUser("carol", 0, { transports: ["polling"], upgrade: false });

    // Ordinary traffic across nodes, acks awaited, deliveries checked.
    for (const [from, to, c, rx] of [["alice", "bob", a1, b], ["bob", "alice", b, a2], ["carol", "alice", carol, a1],
      ["alice", "carol", a2, carol], ["bob", "eve", b, eve1]]) {
      const ack = await send(c, to, `${from} to ${to}`);
      assert.equal(ack.message?.content, `${from} to ${to}`);
      assert.equal((await rx.next("private message", { filter: (m) => m.id === ack.message.id })).from, users[from].userID);
    }
    // Eve cannot speak for Bob: the server sets `from`.
    const forged = await eve0.emitWithAck("private message", { content: "from bob, honest", to: users.alice.userID, from: users.bob.userID });
    assert.equal(forged.message?.from, users.eve.userID);
    assert.equal((await a1.next("private message", { filter: (m) => m.id === forged.message.id })).from, users.eve.userID);

    // Bad payloads: each gets an { error } ack (the text that might echo something it should not).
    for (const payload of [null, { content: "x" }, { to: users.bob.userID }, { content: 7, to: users.bob.userID },
      { content: "x", to: 7 }, { content: "x", to: "not a user id" }, { content: "y".repeat(100 * 1024), to: users.bob.userID }]) {
      const ack = await a1.emitWithAck("private message", payload);
      assert.equal(typeof ack.error, "string", `${JSON.stringify(payload)?.slice(0, 80)} -> ${JSON.stringify(ack)}`);
    }
    // Past the burst of 5 (at 1/s) Bob's socket is rate limited; bounded at 15 tries.
    let limited = null;
    for (let i = 0; i < 15 && !limited; i++) {
      const ack = await send(b, "carol", `burst ${i}`);
      if (ack.error) limited = ack.error;
    }
    assert.ok(limited, "no rate-limit error within 15 messages");

    // Eve guesses tokens from public data: a userID is not a sessionID.
    const guess = open(0, { auth: { sessionID: users.alice.userID } });
    assert.equal((await guess.next("connect_error")).message, "invalid username");
    const guess2 = await connect(1, { sessionID: users.alice.userID, username: "eve-guess" });
    assert.notEqual(guess2.session.userID, users.alice.userID, "a userID restored someone's session");

    // Alice's third tab is allowed, her fourth is refused (MAX_SOCKETS_PER_USER=3).
    await tab("alice", 0);
    const fourth = open(1, { auth: { sessionID: users.alice.sessionID } });
    assert.equal((await fourth.next("connect_error")).message, "too many connections for this user");

    // Departures and returns, as eve sees them.
    b.close();
    assert.equal(await eve0.next("user disconnected", { filter: (id) => id === users.bob.userID }), users.bob.userID);
    const b2 = await tab("bob", 0);
    await eve1.next("user connected", { filter: (u) => u.userID === users.bob.userID });
    a1.close();
    const a3 = await tab("alice", 1, { transports: ["polling"] }); // polling, then upgrade
    assert.equal((await send(a3, "bob", "back again")).message?.content, "back again");
    await b2.next("private message", { filter: (m) => m.content === "back again" });
    await delay(300); // let the last broadcasts reach both eves
  });

  test("nothing any socket received names another user's sessionID", () => {
    const secrets = Object.values(users).map((u) => u.sessionID);
    assert.deepEqual(Object.keys(users).sort(), ["alice", "bob", "carol", "eve"]);
    assert.equal(new Set(secrets).size, secrets.length);
    let packets = 0;
    for (const { c, owner } of sockets) {
      const seen = c.raw.join("\n");
      packets += c.raw.length;
      for (const id of secrets) {
        if (id !== owner) assert.equal(seen.includes(id), false, `a socket of ${owner ?? "nobody"} received another user's sessionID`);
      }
    }
    // The recording works: eve's raw stream names every other user (their public userIDs).
    const eves = sockets.filter((s) => s.owner === users.eve.sessionID).map((s) => s.c.raw.join("\n"));
    assert.equal(eves.length, 2);
    for (const [label, { userID }] of Object.entries(users)) {
      for (const seen of eves) assert.ok(seen.includes(userID), `eve's recording lacks ${label}'s userID`);
    }
    assert.ok(packets > 50, `only ${packets} packets recorded`);
  });

  // Lines logged by the server's own code (target `privmsg::...`), at debug.
  const ownLines = (log) => log.split("\n").filter((l) => /privmsg::/.test(l.replace(/\x1b\[[0-9;]*m/g, "")));

  test("the server's own log lines carry no sessionID, even at RUST_LOG=debug", () => {
    const secrets = Object.values(users).map((u) => u.sessionID);
    for (const node of cluster.nodes) {
      const lines = ownLines(fs.readFileSync(node.logFile, "utf8")).join("\n");
      // The logging works: at debug the handshake names each user's (public) userID.
      assert.match(lines, /handshake accepted/, `${node.logFile}: no debug lines`);
      for (const id of secrets) assert.equal(lines.includes(id), false, `${node.logFile} leaks a sessionID`);
    }
    const all = cluster.nodes.map((n) => ownLines(fs.readFileSync(n.logFile, "utf8")).join("\n")).join("\n");
    for (const [label, { userID }] of Object.entries(users)) assert.ok(all.includes(userID), `no log line names ${label}`);
  });

  // The whole log, dependencies included: socketioxide's own tracing (which at debug dumps raw
  // packets, auth and the `session` event included) must stay compiled out.
  test("no log line at all carries a sessionID at RUST_LOG=debug", () => {
    const secrets = Object.values(users).map((u) => u.sessionID);
    for (const node of cluster.nodes) {
      const log = fs.readFileSync(node.logFile, "utf8");
      const leaks = log.split("\n").filter((l) => secrets.some((id) => l.includes(id)));
      assert.deepEqual(leaks.map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").slice(0, 160)), [], `${node.logFile} leaks`);
    }
  });
});
