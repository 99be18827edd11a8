// PROTOCOL.md's "Extensions planned" as seen by the official socket.io-client, against two
// server nodes sharing one Redis: identity from a token (AUTH=jwt), history pages
// (`fetch messages`), read state (`messages read`).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startCluster } from "./harness.mjs";

const SECRET = "an e2e secret, 32 bytes or longer";

const b64url = (data) => Buffer.from(data).toString("base64url");
// HS256 by hand with node's crypto: what any JWT library does.
export function mintToken(claims, secret = SECRET, header = { alg: "HS256", typ: "JWT" }) {
  const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = crypto.createHmac("sha256", secret).update(body).digest("base64url");
  return `${body}.${signature}`;
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

  async function connect(node, auth) {
    const c = cluster.client(node, { auth });
    c.session = await c.next("session");
    c.users = await c.next("users");
    return c;
  }

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
      ["alg none", { token: `${b64url('{"alg":"none","typ":"JWT"}')}.${valid.split(".")[1]}.` }],
      ["a sub that is not a userID", { token: mintToken({ sub: "user-1", name: "ann", exp: inAnHour() }) }],
    ];
    for (const [label, auth] of cases) {
      const c = cluster.client(0, { auth });
      const err = await c.next("connect_error");
      assert.equal(err.message, "invalid token", label);
      c.close();
    }
  });
});
