// The built Vue client in Debian's Chromium, against two server nodes sharing Redis:
// A's pages are served by node 1, B's by node 2, so every exchange crosses nodes.
// The steps share state and run in order; each saves a screenshot to artifacts/.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startCluster, ARTIFACTS, CLIENT_DIR, WAIT_MS } from "./harness.mjs";
import {
  CHROMIUM, CHROMIUM_ARGS, eventually, item, me, expectOnline, expectConversation, login, send,
  openLoggedPage,
} from "./browser-kit.mjs";

const hasMarker = async (page, name) => (await item(page, name).locator('[data-testid="user-new-messages"]').count()) > 0;

describe("browser: two users on two nodes", () => {
  let cluster, browser, ctxA, ctxB, pageA, pageA2, pageB;
  let step = 0;
  const shot = async (page, name) =>
    page.screenshot({ path: path.join(ARTIFACTS, `browser-${String(++step).padStart(2, "0")}-${name}.png`) });
  const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, "browser-console.log"));

  const openPage = (ctx, url, who) => openLoggedPage(ctx, url, who, consoleLog);
  before(async () => {
    assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
    cluster = await startCluster({ nodes: 2, name: "browser" });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    ctxA = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    ctxB = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  });
  after(async () => {
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
    consoleLog.end();
  });

  test("A (node 1) and B (node 2) choose names and see each other online", async () => {
    pageA = await openPage(ctxA, cluster.nodes[0].url, "A");
    await pageA.getByTestId("username-form").waitFor({ timeout: WAIT_MS });
    await shot(pageA, "A-login");
    await login(pageA, "alice");
    pageB = await openPage(ctxB, cluster.nodes[1].url, "B");
    await login(pageB, "bob");
    await expectOnline(pageA, "bob", true);
    await expectOnline(pageB, "alice", true);
    // Yourself first, then the others by name.
    assert.deepEqual(await pageB.getByTestId("user-name").allTextContents(), ["bob (yourself)", "alice"]);
    await shot(pageA, "A-sees-bob");
    await shot(pageB, "B-sees-alice");
  });

  test("A and B talk; each sees the conversation in order and unread markers on the right user", async () => {
    await item(pageA, "bob").click();
    await send(pageA, "hello bob");
    await eventually(async () =>
      assert.equal(await pageA.locator('[data-testid="message"]').last().getAttribute("data-status"), "sent"));
    await eventually(async () => assert.equal(await pageA.getByTestId("message-time").count(), 1));
    await eventually(async () => assert.equal(await hasMarker(pageB, "alice"), true, "B: new from alice"));
    assert.equal(await hasMarker(pageB, "bob"), false);
    await shot(pageB, "B-unread-from-alice");

    await item(pageA, "alice").click(); // A looks elsewhere, so B's answer must mark bob
    await item(pageB, "alice").click();
    assert.equal(await hasMarker(pageB, "alice"), false, "opening clears the marker");
    await expectConversation(pageB, ["hello bob"]);
    await send(pageB, "hi alice");
    await eventually(async () => assert.equal(await hasMarker(pageA, "bob"), true, "A: new from bob"));
    assert.equal(await hasMarker(pageA, "alice"), false);
    await item(pageA, "bob").click();
    assert.equal(await hasMarker(pageA, "bob"), false);
    await expectConversation(pageA, ["hello bob", "hi alice"]);
    await expectConversation(pageB, ["hello bob", "hi alice"]);
    assert.deepEqual((await pageA.getByTestId("message-sender").allTextContents()).map((s) => s.trim()),
      ["(yourself)", "bob"]);
    await shot(pageA, "A-conversation");
    await shot(pageB, "B-conversation");
  });

  test("A's second tab restores the session and receives A's own messages", async () => {
    pageA2 = await openPage(ctxA, cluster.nodes[0].url, "A2");
    await eventually(async () => assert.equal(await me(pageA2), "alice"));
    assert.equal(await pageA2.getByTestId("username-form").count(), 0, "no username prompt");
    await item(pageA2, "bob").click();
    await expectConversation(pageA2, ["hello bob", "hi alice"]);
    await send(pageA, "from tab one");
    await expectConversation(pageA2, ["hello bob", "hi alice", "from tab one"]);
    assert.equal(await pageA2.locator('[data-testid="message"]').last().getAttribute("data-from-self"), "true");
    await expectConversation(pageB, ["hello bob", "hi alice", "from tab one"]);
    await shot(pageA2, "A2-own-message");
  });

  test("B reloads: no prompt, same user, full history", async () => {
    await pageB.reload();
    await eventually(async () => assert.equal(await me(pageB), "bob"));
    assert.equal(await pageB.getByTestId("username-form").count(), 0, "no username prompt");
    await item(pageB, "alice").click();
    await expectConversation(pageB, ["hello bob", "hi alice", "from tab one"]);
    await shot(pageB, "B-after-reload");
  });

  test("A closes all tabs: B sees A offline; A comes back: online again", async () => {
    await pageA.close();
    await pageA2.close();
    await expectOnline(pageB, "alice", false);
    await shot(pageB, "B-alice-offline");
    pageA = await openPage(ctxA, cluster.nodes[0].url, "A");
    await eventually(async () => assert.equal(await me(pageA), "alice"));
    await expectOnline(pageB, "alice", true);
    await shot(pageB, "B-alice-back");
  });

  test("an oversized message fails visibly in A's page and never reaches B", async () => {
    await item(pageA, "bob").click();
    await expectConversation(pageA, ["hello bob", "hi alice", "from tab one"]);
    await send(pageA, "x".repeat(5000));
    const last = pageA.locator('[data-testid="message"]').last();
    await eventually(async () => assert.equal(await last.getAttribute("data-status"), "failed"));
    const reason = (await last.getByTestId("message-error").textContent()).trim();
    assert.ok(reason.length > "not sent:".length, `failure shows a reason: "${reason}"`);
    await shot(pageA, "A-oversized-failed");
    // Sync point: a later message arrives, the oversized one never did.
    await send(pageA, "after the big one");
    await expectConversation(pageB, ["hello bob", "hi alice", "from tab one", "after the big one"]);
    await shot(pageB, "B-no-oversized");
  });

  test("phone width (375px): list and conversation, with a way back", async () => {
    await pageA.setViewportSize({ width: 375, height: 700 });
    await pageA.getByTestId("message-panel").waitFor({ state: "visible", timeout: WAIT_MS });
    assert.equal(await pageA.getByTestId("user-list").isVisible(), false);
    await shot(pageA, "phone-conversation");
    await pageA.getByTestId("back").click();
    await pageA.getByTestId("user-list").waitFor({ state: "visible", timeout: WAIT_MS });
    await shot(pageA, "phone-user-list");
  });

  test("log out forgets the session", async () => {
    await pageA.getByTestId("logout").click();
    await pageA.getByTestId("username-form").waitFor({ timeout: WAIT_MS });
    assert.equal(await pageA.evaluate(() => localStorage.getItem("sessionID")), null);
    await expectOnline(pageB, "alice", false);
    await pageA.reload();
    await pageA.getByTestId("username-form").waitFor({ timeout: WAIT_MS });
  });

  // Last, because it stops a node: nothing after it depends on how that went.
  test("node 2 restarts: B's page shows reconnecting…, then carries on", async () => {
    const state = () => pageB.getByTestId("connection-status").getAttribute("data-state");
    await eventually(async () => assert.equal(await state(), "connected"));
    await cluster.stopNode(1);
    await eventually(async () => assert.equal(await state(), "reconnecting"));
    await shot(pageB, "B-reconnecting");
    await cluster.restartNode(1);
    // socket.io's backoff can reach 5 s between attempts, hence the longer wait.
    await eventually(async () => assert.equal(await state(), "connected"), 15000);
    await send(pageB, "back after restart");
    await expectConversation(pageB, ["hello bob", "hi alice", "from tab one", "after the big one", "back after restart"]);
    await eventually(async () =>
      assert.equal(await pageB.locator('[data-testid="message"]').last().getAttribute("data-status"), "sent"));
    await shot(pageB, "B-reconnected");
  });
});
