// docs/protocol.md's extensions (marked "ours") as seen by the official socket.io-client, against two
// server nodes sharing one Redis: identity from a token (AUTH=jwt), history pages
// (`fetch messages`), read state (`messages read`).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startCluster } from "./harness.mjs";

const SECRET = "an e2e secret, 32 bytes or longer";

const b64url = (data) => Buffer.from(data).toString("base64url");
// HS256 by hand with node's crypto: what any JWT library does.
export function mintToken(claims, secret = SECRET, alg = "HS256") {
  const body = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const hash = { HS256: "sha256", HS512: "sha512" }[alg];
  const signature = crypto.createHmac(hash, secret).update(body).digest("base64url");
  return `${body}.${signature}`;
}
// Connects to node `node` with `auth` and waits for the handshake's `session` and `users`.
async function joined(cluster, node, auth) {
  const c = cluster.client(node, { auth });
  c.session = await c.next("session");
  c.users = await c.next("users");
  return c;
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("AUTH=jwt over the wire", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ nodes: 2, name: "jwt", env: { AUTH: "jwt", JWT_SECRET: SECRET } });
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  const connect = (node, auth) => joined(cluster, node, auth);

  test("a token names the user; a reload on the other node restores the same session", async () => {
    const sub = crypto.randomUUID();
    const token = mintToken({ sub, name: "ann", exp: inAnHour() });
    const first = await connect(0, { token });
    assert.equal(first.session.userID, sub);
    assert.notEqual(first.session.sessionID, sub);
    assert.equal(first.users.find((u) => u.userID === sub).username, "ann");
    first.close();
    const again = await connect(1, { token, sessionID: first.session.sessionID });
    assert.deepEqual(again.session, first.session);
  });

  test("every token that does not name a user is refused with `invalid token`", async () => {
    const sub = crypto.randomUUID();
    const valid = mintToken({ sub, name: "ann", exp: inAnHour() });
    const cases = [
      ["no auth", undefined],
      ["a username alone", { username: "ann" }],
      ["a malformed token", { token: "not-a-jwt" }],
      ["an expired token", { token: mintToken({ sub, name: "ann", exp: 1000 }) }],
      ["another key", { token: mintToken({ sub, name: "ann", exp: inAnHour() }, "another secret, also 32 bytes long") }],
      ["another algorithm (HS512, same key)", { token: mintToken({ sub, name: "ann", exp: inAnHour() }, SECRET, "HS512") }],
      ["alg none", { token: `${b64url('{"alg":"none","typ":"JWT"}')}.${valid.split(".")[1]}.` }],
      ["a sub that is not a userID", { token: mintToken({ sub: "user 1", name: "ann", exp: inAnHour() }) }],
    ];
    for (const [label, auth] of cases) {
      const c = cluster.client(0, { auth });
      const err = await c.next("connect_error");
      assert.equal(err.message, "invalid token", label);
      c.close();
    }
  });
});

describe("history pages and read state over the wire", () => {
  let cluster;
  let seq = 0;
  before(async () => {
    cluster = await startCluster({ nodes: 2, name: "pages", env: { RATE_LIMIT_PER_SEC: "0", HISTORY_ON_CONNECT: "4" } });
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  const connect = (node, auth) => joined(cluster, node, auth);
  const newUser = (node, name) => connect(node, { username: `${name}-${++seq}` });
  const contents = (messages) => messages.map((m) => m.content);

  test("`fetch messages` pages back from what `users` carried, oldest first, `more` until the start", async () => {
    const a = await newUser(0, "pager");
    const b = await newUser(1, "paged");
    const sent = [];
    for (let i = 0; i < 11; i++) {
      const ack = await a.emitWithAck("private message", { content: `p${i}`, to: b.session.userID });
      assert.ok(ack.message, JSON.stringify(ack));
      sent.push(`p${i}`);
    }
    const again = await connect(0, { sessionID: b.session.sessionID });
    const shown = again.users.find((u) => u.userID === a.session.userID).messages;
    assert.deepEqual(contents(shown), sent.slice(-4), "HISTORY_ON_CONNECT=4");
    const page = await again.emitWithAck("fetch messages", { with: a.session.userID, before: shown[0].id, limit: 5 });
    assert.deepEqual(contents(page.messages), sent.slice(2, 7));
    assert.equal(page.more, true);
    const last = await again.emitWithAck("fetch messages", { with: a.session.userID, before: page.messages[0].id, limit: 5 });
    assert.deepEqual(last, { messages: last.messages, more: false });
    assert.deepEqual(contents(last.messages), sent.slice(0, 2));
    for (const [payload, error] of [
      ["x", "invalid payload: expected an object { with, before?, limit? }"],
      [{ with: "some one" }, "with must be a userID"],
      [{ with: a.session.userID, before: "nope" }, "before must be a messageID"],
      [{ with: a.session.userID, limit: 500 }, "limit must be an integer from 1 to 100"],
    ]) {
      assert.deepEqual(await again.emitWithAck("fetch messages", payload), { error });
    }
  });

  test("`messages read` reaches both users' sockets on both nodes; `unread` and `readUpTo` survive a reload", async () => {
    const a = await newUser(0, "writer");
    const b = await newUser(1, "reader");
    const b2 = await connect(0, { sessionID: b.session.sessionID });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await a.emitWithAck("private message", { content: `r${i}`, to: b.session.userID })).message.id);
    }
    const before = await connect(1, { sessionID: b.session.sessionID });
    assert.equal(before.users.find((u) => u.userID === a.session.userID).unread, 3);
    assert.deepEqual(await b.emitWithAck("messages read", { with: a.session.userID, upTo: ids[1] }), {});
    const event = { by: b.session.userID, with: a.session.userID, upTo: ids[1] };
    for (const socket of [a, b, b2, before]) assert.deepEqual(await socket.next("messages read"), event);
    const reloaded = await connect(0, { sessionID: b.session.sessionID });
    assert.equal(reloaded.users.find((u) => u.userID === a.session.userID).unread, 1);
    const writer = await connect(1, { sessionID: a.session.sessionID });
    assert.equal(writer.users.find((u) => u.userID === b.session.userID).readUpTo, ids[1]);
    assert.deepEqual(await b.emitWithAck("messages read", { with: a.session.userID, upTo: "legacy:1" }), { error: "upTo must be a messageID" });
  });
});
