// The wire protocol (docs/protocol.md) as seen by the official socket.io-client,
// against two server nodes sharing one Redis, over each transport on its own.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startCluster } from "./harness.mjs";

// Negative checks ("X must NOT arrive") can only wait a while; run them after a
// positive sync point so this grace only covers event reordering, not slowness.
const GRACE_MS = 500;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

const TRANSPORTS = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"] },
};

for (const [transport, opts] of Object.entries(TRANSPORTS)) {
  describe(`protocol over ${transport}`, () => {
    let cluster;
    const sessionIDs = new Set();
    let seq = 0;

    before(async () => {
      cluster = await startCluster({ nodes: 2, name: `protocol-${transport}` });
    });
    after(async () => {
      if (cluster) await cluster.stop();
    });

    // Connect to node `node` (0 or 1) and wait for the handshake events.
    async function connect(node, auth) {
      const c = cluster.client(node, { ...opts, auth });
      c.session = await c.next("session");
      c.users = await c.next("users");
      sessionIDs.add(c.session.sessionID);
      assert.equal(c.transport, transport, "connected over the requested transport");
      return c;
    }
    const newUser = (node, name) => connect(node, { username: `${name}-${transport}-${++seq}` });

    test("a new user gets `session`, then `users` containing itself", async () => {
      const c = cluster.client(0, { ...opts, auth: { username: `alice-${transport}` } });
      const session = await c.next("session");
      assert.equal(typeof session.sessionID, "string");
      assert.equal(typeof session.userID, "string");
      assert.ok(session.sessionID.length >= 16, `sessionID too short: ${session.sessionID}`);
      assert.notEqual(session.sessionID, session.userID);
      sessionIDs.add(session.sessionID);
      const users = await c.next("users");
      assert.ok(Array.isArray(users));
      const me = users.filter((u) => u.userID === session.userID);
      assert.equal(me.length, 1, "the user is listed exactly once");
      assert.equal(me[0].username, `alice-${transport}`);
      assert.equal(me[0].connected, true);
      assert.deepEqual(me[0].messages, []);
      for (const u of users) assert.equal(JSON.stringify(u).includes(session.sessionID), false);
    });

    test("restoring by sessionID (on the other node) keeps the same userID", async () => {
      const a = await newUser(0, "restore");
      a.close();
      const again = await connect(1, { sessionID: a.session.sessionID });
      assert.deepEqual(again.session, a.session);
      const me = again.users.find((u) => u.userID === a.session.userID);
      assert.ok(me, "restored user is in `users`");
      assert.equal(me.username, a.users.find((u) => u.userID === a.session.userID).username);
    });

    for (const [label, auth] of [
      ["no auth", undefined],
      ["empty auth", {}],
      ["unknown sessionID, no username", { sessionID: "00000000-0000-4000-8000-000000000000" }],
      ["blank username", { username: "   " }],
    ]) {
      test(`${label} is refused with "invalid username"`, async () => {
        const c = cluster.client(0, { ...opts, auth });
        const err = await c.next("connect_error");
        assert.equal(err.message, "invalid username");
        assert.equal(c.received("session").length, 0);
      });
    }

    test("`user connected` crosses nodes and carries no sessionID", async () => {
      const a = await newUser(0, "watcher");
      const b = await newUser(1, "newcomer");
      const announced = await a.next("user connected", { filter: (u) => u.userID === b.session.userID });
      assert.deepEqual(announced, {
        userID: b.session.userID,
        username: b.users.find((u) => u.userID === b.session.userID).username,
        connected: true,
        messages: [],
      });
    });

    test("a private message is acked, stored, and fanned out across nodes", async () => {
      const a = await newUser(0, "sender");
      const a2 = await connect(1, { sessionID: a.session.sessionID }); // A's second tab, other node
      const b = await newUser(1, "recipient");
      const before = Date.now();
      const ack = await a.emitWithAck("private message", { content: "hello B", to: b.session.userID });
      assert.ok(ack && ack.message, `expected { message }, got ${JSON.stringify(ack)}`);
      const m = ack.message;
      assert.equal(m.content, "hello B");
      assert.equal(m.from, a.session.userID);
      assert.equal(m.to, b.session.userID);
      assert.equal(typeof m.id, "string");
      assert.ok(m.id.length > 0);
      assert.equal(typeof m.timestamp, "number");
      assert.ok(m.timestamp >= before - 1000 && m.timestamp <= Date.now() + 1000, `timestamp ${m.timestamp}`);

      const atB = await b.next("private message");
      assert.deepEqual(
        { content: atB.content, from: atB.from, to: atB.to, id: atB.id },
        { content: m.content, from: m.from, to: m.to, id: m.id },
      );
      const atA2 = await a2.next("private message");
      assert.equal(atA2.id, m.id);
      assert.equal(atA2.content, "hello B");
      await delay(GRACE_MS);
      assert.deepEqual(a.received("private message"), [], "the sending socket must not get its own message");

      // The message is history now, for both users, oldest first.
      await a.emitWithAck("private message", { content: "second", to: b.session.userID });
      const b2 = await connect(0, { sessionID: b.session.sessionID });
      const convo = b2.users.find((u) => u.userID === a.session.userID);
      assert.deepEqual(convo.messages.map((x) => [x.content, x.from, x.to]), [
        ["hello B", a.session.userID, b.session.userID],
        ["second", a.session.userID, b.session.userID],
      ]);
    });

    test("`typing` reaches the recipient's tabs on both nodes as { from }, is never stored, and a bad one is refused", async () => {
      const a = await newUser(0, "typist");
      const b = await newUser(1, "reader");
      const b2 = await connect(0, { sessionID: b.session.sessionID }); // B's second tab, other node
      assert.deepEqual(await a.emitWithAck("typing", { to: b.session.userID }), {});
      assert.deepEqual(await b.next("typing"), { from: a.session.userID });
      assert.deepEqual(await b2.next("typing"), { from: a.session.userID });
      assert.deepEqual(await a.emitWithAck("typing", { to: "no body" }), { error: "to must be a userID" });
      assert.deepEqual(await a.emitWithAck("typing", "B"), { error: "invalid payload: expected an object { to }" });
      const again = await connect(1, { sessionID: b.session.sessionID });
      assert.deepEqual(again.users.find((u) => u.userID === a.session.userID).messages, []);
    });

    test("bad payloads get an { error } ack; the socket stays connected and can still send", async () => {
      const a = await newUser(0, "badsender");
      const b = await newUser(1, "badtarget");
      const to = b.session.userID;
      const bad = [
        ["null", null],
        ["missing to", { content: "no recipient" }],
        ["missing content", { to }],
        ["empty content", { content: "", to }],
        ["non-string content", { content: 42, to }],
        ["non-string to", { content: "x", to: 7 }],
        ["10 KB content", { content: "x".repeat(10 * 1024), to }],
        ["100 KB content", { content: "x".repeat(100 * 1024), to }],
      ];
      for (const [label, payload] of bad) {
        const ack = await a.emitWithAck("private message", payload).catch((err) => {
          throw new Error(`${label}: no ack (${err.message})`);
        });
        assert.ok(ack && typeof ack.error === "string" && ack.error.length > 0,
          `${label}: expected { error }, got ${JSON.stringify(ack)?.slice(0, 200)}`);
        assert.equal(ack.message, undefined, `${label}: must not also carry a message`);
        assert.ok(a.socket.connected, `${label}: socket was disconnected`);
      }
      const ok = await a.emitWithAck("private message", { content: "still alive", to });
      assert.equal(ok.message?.content, "still alive");
      const first = await b.next("private message");
      assert.equal(first.content, "still alive", "no refused message may be forwarded");
      assert.deepEqual(b.received("private message"), []);
      assert.deepEqual(a.received("disconnect"), []);
    });

    test("`user disconnected` (bare userID) only when the user's last tab anywhere closes", async () => {
      const a = await newUser(0, "leaver");
      const a2 = await connect(1, { sessionID: a.session.sessionID });
      const b = await newUser(1, "stayer");
      a.close();
      // Sync point: A's other tab still works, and B hears from it.
      await a2.emitWithAck("private message", { content: "still here", to: b.session.userID });
      await b.next("private message");
      await delay(GRACE_MS);
      assert.deepEqual(b.received("user disconnected"), [], "A still has a tab open on node 2");

      a2.close();
      const gone = await b.next("user disconnected", { filter: (id) => id === a.session.userID });
      assert.equal(gone, a.session.userID);
      assert.equal(typeof gone, "string");

      // And a fresh `users` list shows A offline.
      const b2 = await connect(0, { sessionID: b.session.sessionID });
      assert.equal(b2.users.find((u) => u.userID === a.session.userID).connected, false);
    });

    test("no sessionID ever appears in the server logs", async () => {
      assert.ok(sessionIDs.size > 0);
      for (const node of cluster.nodes) {
        const log = fs.readFileSync(node.logFile, "utf8");
        assert.ok(log.length > 0, `${node.logFile} is empty: RUST_LOG=info logged nothing`);
        for (const id of sessionIDs) assert.equal(log.includes(id), false, `${node.logFile} leaks a sessionID`);
      }
    });
  });
}

// Stopping a node is a departure too: docs/protocol.md's "user disconnected ... when the
// user's LAST socket anywhere has gone" has to hold through a rolling restart.
describe("a node shutting down (SIGTERM)", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ nodes: 2, name: "protocol-shutdown" });
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  test("announces its users' departure on the other node and saves them offline", async () => {
    const opts = { transports: ["websocket"] };
    const x = cluster.client(0, { ...opts, auth: { username: "on-the-stopping-node" } });
    const { userID } = await x.next("session");
    const w = cluster.client(1, { ...opts, auth: { username: "watcher-elsewhere" } });
    const watcher = await w.next("session");
    await w.next("users");

    const started = Date.now();
    const stopped = cluster.stopNode(0);
    const gone = await w.next("user disconnected", { filter: (id) => id === userID });
    assert.equal(gone, userID);
    await stopped;
    const log = fs.readFileSync(cluster.nodes[0].logFile, "utf8");
    assert.doesNotMatch(log, /not saved before the drain timeout/);
    assert.ok(Date.now() - started < 8000, `node took ${Date.now() - started} ms to stop`);

    const again = cluster.client(1, { ...opts, auth: { sessionID: watcher.sessionID } });
    await again.next("session");
    const users = await again.next("users");
    assert.equal(users.find((u) => u.userID === userID).connected, false, "saved as offline");
  });
});
