// The Vue client's extensions in Chromium, against two server nodes sharing Redis (docs/protocol.md,
// the extensions): "typing…", older messages paged in on scroll-up (`fetch messages`),
// unread counts that survive a reload and read ticks (`messages read`), and sign-in with a token
// (AUTH=jwt). A's pages come from node 1, B's from node 2, so every event crosses nodes.
// Screenshots go to artifacts/client-*.png.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startCluster, ARTIFACTS, CLIENT_DIR, WAIT_MS } from "./harness.mjs";
import {
  CHROMIUM, CHROMIUM_ARGS, eventually, item, me, expectConversation, expectOnline, login, send,
  openLoggedPage, panelTexts,
} from "./browser-kit.mjs";

const HISTORY_ON_CONNECT = 5;
const SEEDED = 30;
const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, "client-features-console.log"));
let shots = 0;
const shot = (page, name) =>
  page.screenshot({ path: path.join(ARTIFACTS, `client-${String(++shots).padStart(2, "0")}-${name}.png`) });

const unreadOf = async (page, name) => {
  const badge = item(page, name).getByTestId("unread-count");
  return (await badge.count()) ? Number((await badge.textContent()).trim()) : 0;
};
const hasMarker = async (page, name) => (await item(page, name).getByTestId("user-new-messages").count()) > 0;
const messages = (page) => page.locator('[data-testid="message-panel"] [data-testid="message"]');
// For each message in the open conversation: [content, has a read tick].
const ticks = (page) => messages(page).evaluateAll((els) => els.map((el) => [
  el.querySelector('[data-testid="message-content"]').textContent,
  Boolean(el.querySelector('[data-testid="message-read"]')),
]));
const userIdOf = (page, name) => item(page, name).getAttribute("data-userid");
const newBrowserPage = async (browser, url, who, viewport = { width: 1000, height: 700 }) => {
  const ctx = await browser.newContext({ viewport });
  return openLoggedPage(ctx, url, who, consoleLog);
};
// A page of `url` signed in with a stored session (as after a reload), without the username form.
const openAs = async (browser, url, who, sessionID, viewport) => {
  const page = await newBrowserPage(browser, url, who, viewport);
  await page.evaluate((id) => localStorage.setItem("sessionID", id), sessionID);
  await page.reload();
  return page;
};

// Waits until the open conversation has settled: no page on its way, and either the list can
// scroll or there is nothing older (a list too short to scroll pages back by itself).
async function settled(page) {
  const list = page.getByTestId("message-list");
  await eventually(async () => {
    assert.equal(await list.getAttribute("data-loading"), "false");
    const m = await list.evaluate((el) => ({ h: el.scrollHeight, c: el.clientHeight, more: el.dataset.more }));
    assert.ok(m.h > m.c || m.more === "false", `the list overflows or has nothing older: ${JSON.stringify(m)}`);
  });
  return panelTexts(page);
}

// Scrolls the open conversation to the top until it shows all of `texts`: each time an older
// page comes, in order, and the message that was at the top stays where it was on screen.
async function pageBackToStart(page, texts) {
  const list = page.getByTestId("message-list");
  let before = await settled(page);
  for (let round = 0; before.length < texts.length; round++) {
    assert.ok(round < texts.length, "pages keep coming");
    const topText = before[0];
    const top = () => messages(page).filter({ hasText: topText }).first();
    const y0 = await list.evaluate((el) => {
      el.scrollTop = 0;
      return el.querySelector('[data-testid="message"]').getBoundingClientRect().top;
    });
    await eventually(async () => assert.ok((await panelTexts(page)).length > before.length, "an older page came"));
    await eventually(async () => assert.equal(await list.getAttribute("data-loading"), "false"));
    const now = await panelTexts(page);
    assert.deepEqual(now, texts.slice(texts.length - now.length), "oldest first, no gaps, no duplicates");
    const y1 = await top().evaluate((el) => el.getBoundingClientRect().top);
    assert.ok(Math.abs(y1 - y0) < 40, `the view stays put: ${y0} -> ${y1}`);
    before = await settled(page);
  }
  // The server said there is no more: nothing left to ask for.
  await eventually(async () => assert.equal(await list.getAttribute("data-more"), "false"));
  assert.equal(await page.getByTestId("load-older").count(), 0);
  assert.deepEqual(await panelTexts(page), texts);
}

// An official socket.io-client user, for seeding: resolves once `session` has arrived.
async function wireUser(cluster, nodeIndex, username) {
  const client = cluster.client(nodeIndex, { auth: { username } });
  const session = await client.next("session");
  await client.next("users");
  return { client, ...session };
}

describe("client features: typing, history pages, unread counts, read ticks", () => {
  let cluster, browser, pageA, pageB;

  before(async () => {
    assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
    cluster = await startCluster({
      nodes: 2, name: "client-features", env: { HISTORY_ON_CONNECT: String(HISTORY_ON_CONNECT) },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    pageA = await newBrowserPage(browser, cluster.nodes[0].url, "A");
    pageB = await newBrowserPage(browser, cluster.nodes[1].url, "B");
    await login(pageA, "alice");
    await login(pageB, "bob");
    await expectOnline(pageA, "bob", true);
    await expectOnline(pageB, "alice", true);
  });
  after(async () => {
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
  });

  test("typing: B sees 'typing…' while A types (list and open conversation), gone once the message arrives or A stops", async () => {
    await item(pageB, "alice").click();
    assert.equal(await pageB.getByTestId("typing-indicator").count(), 0, "nobody types yet");
    await item(pageA, "bob").click();
    await pageA.getByTestId("message-input").pressSequentially("hel", { delay: 30 });
    await eventually(async () => assert.equal(await pageB.getByTestId("typing-indicator").count(), 1));
    assert.match(await pageB.getByTestId("typing-indicator").textContent(), /alice is typing…/);
    assert.equal(await item(pageB, "alice").getByTestId("user-typing").count(), 1, "the list shows it too");
    assert.equal(await pageA.getByTestId("typing-indicator").count(), 0, "not shown to the one typing");
    await shot(pageB, "B-sees-alice-typing");
    await pageA.getByTestId("message-input").pressSequentially("lo bob", { delay: 30 });
    await pageA.getByTestId("message-send").click();
    await expectConversation(pageB, ["hello bob"]);
    await eventually(async () => assert.equal(await pageB.getByTestId("typing-indicator").count(), 0, "message arrived"));

    // A types and stops: "typing…" comes back, then goes away by itself (about 3 s).
    await eventually(async () => {
      await pageA.getByTestId("message-input").pressSequentially("x");
      assert.equal(await pageB.getByTestId("typing-indicator").count(), 1);
    }, WAIT_MS);
    const shownAt = Date.now();
    await eventually(async () => assert.equal(await pageB.getByTestId("typing-indicator").count(), 0), 10000);
    assert.ok(Date.now() - shownAt >= 1000, "shown for a while, not dropped at once");
    assert.equal(await item(pageB, "alice").getByTestId("user-typing").count(), 0);
    await pageA.getByTestId("message-input").fill("");
  });

  test("unread: B's count grows while B looks elsewhere and survives a reload; opening clears it for good", async () => {
    await item(pageB, "bob").click(); // B looks at its own entry
    await item(pageA, "bob").click();
    for (const text of ["one", "two", "three"]) await send(pageA, text);
    await eventually(async () => assert.equal(await unreadOf(pageB, "alice"), 3, "live count"));
    assert.equal(await hasMarker(pageB, "alice"), true);
    assert.equal(await unreadOf(pageB, "bob"), 0);
    // No read tick on A's side: B has not opened these yet ("hello bob" was read in the open panel).
    await eventually(async () => assert.deepEqual(await ticks(pageA),
      [["hello bob", true], ["one", false], ["two", false], ["three", false]]));

    await pageB.reload();
    await eventually(async () => assert.equal(await me(pageB), "bob"));
    await eventually(async () => assert.equal(await unreadOf(pageB, "alice"), 3, "count from `users` after a reload"));
    await shot(pageB, "B-unread-after-reload");

    // B's second tab (node 1) hears that B read the conversation in the first.
    const pageB2 = await openAs(browser, cluster.nodes[0].url, "B2",
      await pageB.evaluate(() => localStorage.getItem("sessionID")));
    await eventually(async () => assert.equal(await unreadOf(pageB2, "alice"), 3));
    await item(pageB, "alice").click();
    assert.equal(await unreadOf(pageB, "alice"), 0, "opening clears it");
    assert.equal(await hasMarker(pageB, "alice"), false);
    await eventually(async () => assert.equal(await unreadOf(pageB2, "alice"), 0, "the other tab too"));
    assert.equal(await hasMarker(pageB2, "alice"), false);
    await pageB2.context().close();

    await item(pageB, "bob").click();
    await pageB.reload();
    await eventually(async () => assert.equal(await me(pageB), "bob"));
    await expectOnline(pageB, "alice", true); // `users` has arrived
    assert.equal(await unreadOf(pageB, "alice"), 0, "the read mark is stored");
    assert.equal(await hasMarker(pageB, "alice"), false);
  });

  test("read ticks: A's messages show read once B has opened them, live and after A reloads", async () => {
    await eventually(async () => assert.deepEqual(await ticks(pageA),
      [["hello bob", true], ["one", true], ["two", true], ["three", true]]));
    await shot(pageA, "A-read-ticks");
    // B looks elsewhere: a new message stays unread, no tick; B opens it: tick.
    await send(pageA, "four");
    await eventually(async () => assert.equal(await unreadOf(pageB, "alice"), 1));
    await eventually(async () => assert.deepEqual((await ticks(pageA)).at(-1), ["four", false]));
    await item(pageB, "alice").click();
    await eventually(async () => assert.deepEqual((await ticks(pageA)).at(-1), ["four", true]));
    // B's own answer is not read by A until A sees it: A has the conversation open, so at once.
    await send(pageB, "got them");
    await eventually(async () => assert.deepEqual((await ticks(pageB)).at(-1), ["got them", true]));

    await pageA.reload();
    await eventually(async () => assert.equal(await me(pageA), "alice"));
    await item(pageA, "bob").click();
    await eventually(async () => assert.deepEqual(await ticks(pageA), [
      ["hello bob", true], ["one", true], ["two", true], ["three", true], ["four", true], ["got them", false],
    ]), WAIT_MS);
    await shot(pageA, "A-read-ticks-after-reload");
  });

  test(`older messages: with HISTORY_ON_CONNECT=${HISTORY_ON_CONNECT}, scrolling up pages in all ${SEEDED}, keeping the view`, async () => {
    const carol = await wireUser(cluster, 0, "carol");
    const dave = await wireUser(cluster, 1, "dave");
    const texts = Array.from({ length: SEEDED }, (_, i) => `older ${String(i + 1).padStart(2, "0")}`);
    for (const content of texts) {
      const res = await dave.client.emitWithAck("private message", { content, to: carol.userID });
      assert.ok(res.message, `stored: ${JSON.stringify(res)}`);
    }
    dave.client.close();
    // A short window, so that a few pages are needed before the list can scroll at all.
    const page = await openAs(browser, cluster.nodes[0].url, "C", carol.sessionID, { width: 1000, height: 450 });
    await eventually(async () => assert.equal(await me(page), "carol"));
    carol.client.close();
    await item(page, "dave").click();
    // Whatever was loaded to fill the panel, not everything: the rest needs scrolling up.
    const first = await settled(page);
    assert.ok(first.length >= HISTORY_ON_CONNECT && first.length < SEEDED, `not all at once: ${first.length}`);
    assert.deepEqual(first, texts.slice(SEEDED - first.length), "the newest, in order");
    await shot(page, "C-newest-only");

    await pageBackToStart(page, texts);
    await shot(page, "C-all-pages");
    await page.context().close();
  });

  test("the Node server's messages (no id) page in before ours; never unread, never ticked", async () => {
    const eve = await wireUser(cluster, 0, "eve");
    const frank = await wireUser(cluster, 1, "frank");
    // As the Node server stored them: { content, from, to }, in both histories, oldest first.
    const legacy = Array.from({ length: 8 }, (_, i) => ({
      content: `node ${i + 1}`,
      ...(i % 2 ? { from: eve.userID, to: frank.userID } : { from: frank.userID, to: eve.userID }),
    }));
    for (const user of [eve, frank]) {
      execFileSync("redis-cli", ["-u", cluster.redisUrl, "RPUSH", `messages:${user.userID}`,
        ...legacy.map((m) => JSON.stringify(m))]);
    }
    const ours = [];
    for (let i = 1; i <= 4; i++) {
      const res = await frank.client.emitWithAck("private message", { content: `new ${i}`, to: eve.userID });
      assert.ok(res.message, `stored: ${JSON.stringify(res)}`);
    }
    const last = await eve.client.emitWithAck("private message", { content: "new 5", to: frank.userID });
    assert.ok(last.message && last.message.id, `stored: ${JSON.stringify(last)}`);
    // Frank has read everything, eve's last message included.
    const read = await frank.client.emitWithAck("messages read", { with: eve.userID, upTo: last.message.id });
    assert.ok(!read || !read.error, `marked: ${JSON.stringify(read)}`);
    ours.push("new 1", "new 2", "new 3", "new 4", "new 5");
    const texts = legacy.map((m) => m.content).concat(ours);
    eve.client.close();
    frank.client.close();

    const page = await openAs(browser, cluster.nodes[0].url, "E", eve.sessionID, { width: 1000, height: 450 });
    await eventually(async () => assert.equal(await me(page), "eve"));
    await eventually(async () => assert.equal(await unreadOf(page, "frank"), 4, "ours only: node messages are never unread"));
    await item(page, "frank").click();
    await pageBackToStart(page, texts);
    // Eve's own messages: the Node server's never show read, hers does.
    const mine = (await ticks(page)).filter(([text]) => ["node 2", "node 4", "node 6", "node 8", "new 5"].includes(text));
    assert.deepEqual(mine, [["node 2", false], ["node 4", false], ["node 6", false], ["node 8", false], ["new 5", true]]);
    await shot(page, "E-legacy-paged");
    // Opening marked it read (with a UUID): the count stays at 0 after a reload. The mark
    // travels on its own: wait until Redis holds it, or the reload may outrun it.
    await item(page, "eve").click();
    await eventually(async () => {
      const mark = String(execFileSync("redis-cli", ["-u", cluster.redisUrl, "HGET", `privmsg:read:${eve.userID}`, frank.userID])).trim();
      assert.match(mark, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `eve's mark: ${mark}`);
    });
    await page.reload();
    await eventually(async () => assert.equal(await me(page), "eve"));
    await expectOnline(page, "frank", false);
    assert.equal(await unreadOf(page, "frank"), 0);
    await page.context().close();
  });
});

// HS256, by hand: base64url(header).base64url(payload).base64url(HMAC-SHA256 of the two).
function mintJwt(claims, secret) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  const sig = crypto.createHmac("sha256", secret).update(body).digest("base64url");
  return `${body}.${sig}`;
}

describe("client features: AUTH=jwt", () => {
  const SECRET = crypto.randomBytes(32).toString("hex");
  const exp = () => Math.floor(Date.now() / 1000) + 3600;
  let cluster, browser;

  before(async () => {
    assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
    cluster = await startCluster({ nodes: 2, name: "client-jwt", env: { AUTH: "jwt", JWT_SECRET: SECRET } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
  });

  test("?token= signs in as the token's user, on either node, and survives a reload", async () => {
    const sub = crypto.randomUUID();
    const token = mintJwt({ sub, name: "jwt-june", exp: exp() }, SECRET);
    const page = await newBrowserPage(browser, `${cluster.nodes[0].url}/?token=${token}`, "J");
    await eventually(async () => assert.equal(await me(page), "jwt-june"));
    assert.equal(await page.getByTestId("username-form").count(), 0);
    assert.equal(await page.getByTestId("token-form").count(), 0);
    assert.equal(await userIdOf(page, "jwt-june"), sub, "the token's sub is the userID");
    assert.equal(await page.evaluate(() => localStorage.getItem("token")), token, "kept for reloads");
    assert.ok(!page.url().includes("token="), `the address no longer shows it: ${page.url()}`);
    await shot(page, "J-signed-in");

    await page.reload();
    await eventually(async () => assert.equal(await me(page), "jwt-june"));
    assert.equal(await page.getByTestId("token-form").count(), 0);
    assert.equal(await userIdOf(page, "jwt-june"), sub);

    // The same token on node 2 in another browser: the same user; the two talk to a third.
    const other = mintJwt({ sub: crypto.randomUUID(), name: "jwt-kim", exp: exp() }, SECRET);
    const pageK = await newBrowserPage(browser, `${cluster.nodes[1].url}/?token=${other}`, "K");
    await eventually(async () => assert.equal(await me(pageK), "jwt-kim"));
    await expectOnline(page, "jwt-kim", true);
    await item(pageK, "jwt-june").click();
    await send(pageK, "hi june");
    await item(page, "jwt-kim").click();
    await expectConversation(page, ["hi june"]);
    const page2 = await newBrowserPage(browser, `${cluster.nodes[1].url}/?token=${token}`, "J2");
    await eventually(async () => assert.equal(await me(page2), "jwt-june"));
    assert.equal(await userIdOf(page2, "jwt-june"), sub, "same userID on the other node");
    await item(page2, "jwt-kim").click();
    await expectConversation(page2, ["hi june"]);
    for (const p of [page, pageK, page2]) await p.context().close();
  });

  test("a bad token shows the token form; pasting a good one signs in", async () => {
    const forged = mintJwt({ sub: crypto.randomUUID(), name: "mallory", exp: exp() }, "not the secret");
    const page = await newBrowserPage(browser, `${cluster.nodes[0].url}/?token=${forged}`, "M");
    await page.getByTestId("token-form").waitFor({ timeout: WAIT_MS });
    assert.match(await page.getByTestId("token-error").textContent(), /refused/);
    assert.equal(await page.evaluate(() => localStorage.getItem("token")), null, "a refused token is not kept");
    await shot(page, "M-token-form");
    // An expired one is refused too (an hour ago: past any JWT_LEEWAY_SECS default).
    const expired = mintJwt({ sub: crypto.randomUUID(), name: "old", exp: Math.floor(Date.now() / 1000) - 3600 }, SECRET);
    await page.getByTestId("token-input").fill(expired);
    await page.getByTestId("token-submit").click();
    await eventually(async () => {
      assert.equal(await page.getByTestId("token-form").count(), 1);
      assert.equal(await page.getByTestId("token-input").inputValue(), "", "a new form: the server answered");
      assert.match(await page.getByTestId("token-error").textContent(), /refused/);
    });
    const good = mintJwt({ sub: crypto.randomUUID(), name: "jwt-lee", exp: exp() }, SECRET);
    await page.getByTestId("token-input").fill(good);
    await page.getByTestId("token-submit").click();
    await eventually(async () => assert.equal(await me(page), "jwt-lee"));
    await page.reload();
    await eventually(async () => assert.equal(await me(page), "jwt-lee"));
    await page.context().close();
  });

  test("without a token the username form shows as usual; this server then asks for a token", async () => {
    const page = await newBrowserPage(browser, cluster.nodes[1].url, "N");
    await page.getByTestId("username-form").waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByTestId("token-form").count(), 0);
    await page.getByTestId("username-input").fill("nobody");
    await page.getByTestId("username-submit").click();
    await page.getByTestId("token-form").waitFor({ timeout: WAIT_MS });
    assert.match(await page.getByTestId("token-error").textContent(), /token/);
    await page.getByTestId("token-use-username").click();
    await page.getByTestId("username-form").waitFor({ timeout: WAIT_MS });
    await page.context().close();
  });
});
