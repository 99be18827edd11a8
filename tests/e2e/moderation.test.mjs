// The Vue client's moderation (PROTOCOL.md, "Extensions planned" -> "Moderation") in Chromium,
// against two server nodes sharing Redis: alice in two tabs (A1 on node 1, A2 on node 2), bob
// (B) on node 2. Blocking from the conversation's header, and deleting and editing one's own
// messages from their menu, each seen live in the other tab and in the peer's view, and after a
// reload. A node with a 1 s edit window shows the server's "too late to edit".
// Screenshots go to artifacts/moderation-*.png.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startCluster, ARTIFACTS, CLIENT_DIR, WAIT_MS } from "./harness.mjs";
import {
  CHROMIUM, CHROMIUM_ARGS, eventually, item, me, expectConversation, expectOnline, login, send,
  openLoggedPage, panelTexts,
} from "./browser-kit.mjs";

const MAX_MESSAGE_BYTES = 200; // small, so that an edit past it is refused with the server's text
const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, "moderation-console.log"));
let shots = 0;
const shot = (page, name) =>
  page.screenshot({ path: path.join(ARTIFACTS, `moderation-${String(++shots).padStart(2, "0")}-${name}.png`) });

const newBrowserPage = async (browser, url, who) => {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  return openLoggedPage(ctx, url, who, consoleLog);
};
// Another tab of the user signed in on `page`, on `url`: its stored session, as after a reload.
const secondTab = async (browser, url, who, page) => {
  const sessionID = await page.evaluate(() => localStorage.getItem("sessionID"));
  const tab = await newBrowserPage(browser, url, who);
  await tab.evaluate((id) => localStorage.setItem("sessionID", id), sessionID);
  await tab.reload();
  return tab;
};

// The open conversation's message whose content is exactly `text`.
const message = (page, text) => page.locator('[data-testid="message-panel"] [data-testid="message"]')
  .filter({ has: page.getByTestId("message-content").getByText(text, { exact: true }) });
const messages = (page) => page.locator('[data-testid="message-panel"] [data-testid="message"]');
// For each message in the open conversation: [content, marked "edited"].
const edits = (page) => messages(page).evaluateAll((els) => els.map((el) => [
  el.querySelector('[data-testid="message-content"]').textContent,
  Boolean(el.querySelector('[data-testid="message-edited"]')),
]));
const menuButtons = (page) => page.locator('[data-testid="message-panel"] [data-testid="message-menu"]');
const unreadOf = async (page, name) => {
  const badge = item(page, name).getByTestId("unread-count");
  return (await badge.count()) ? Number((await badge.textContent()).trim()) : 0;
};
const blockedInList = async (page, name) => (await item(page, name).getByTestId("user-blocked").count()) > 0;
const blockedInHeader = async (page) => (await page.getByTestId("blocked-mark").count()) > 0;

async function openMenu(page, text) {
  await message(page, text).getByTestId("message-menu").click();
  await message(page, text).getByTestId("message-menu-items").waitFor({ timeout: WAIT_MS });
}
async function edit(page, text, content) {
  await openMenu(page, text);
  await message(page, text).getByTestId("message-edit").click();
  await page.getByTestId("edit-input").fill(content);
  await page.getByTestId("edit-save").click();
}
// Reloads `page` and opens the conversation with `name` again, once `users` has come.
async function reloadInto(page, self, name) {
  await page.reload();
  await eventually(async () => assert.equal(await me(page), self));
  await eventually(async () => assert.equal(await item(page, name).count(), 1));
  await item(page, name).click();
}

describe("client moderation: block, delete and edit across tabs and nodes", () => {
  let cluster, browser, pageA1, pageA2, pageB;

  before(async () => {
    assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
    cluster = await startCluster({
      nodes: 2, name: "moderation", env: { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    pageA1 = await newBrowserPage(browser, cluster.nodes[0].url, "A1");
    pageB = await newBrowserPage(browser, cluster.nodes[1].url, "B");
    await login(pageA1, "alice");
    await login(pageB, "bob");
    pageA2 = await secondTab(browser, cluster.nodes[1].url, "A2", pageA1);
    await eventually(async () => assert.equal(await me(pageA2), "alice"));
    await expectOnline(pageA1, "bob", true);
    await expectOnline(pageB, "alice", true);
    for (const page of [pageA1, pageA2]) await item(page, "bob").click();
    await item(pageB, "alice").click();
  });
  after(async () => {
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
    consoleLog.end();
  });

  test("the menu is on one's own stored messages only: nothing on the peer's", async () => {
    await send(pageA1, "hello bob");
    await expectConversation(pageB, ["hello bob"]);
    await send(pageB, "hi alice");
    for (const page of [pageA1, pageA2, pageB]) await expectConversation(page, ["hello bob", "hi alice"]);
    await eventually(async () => assert.equal(await message(pageA1, "hello bob").getAttribute("data-status"), "sent"));
    await eventually(async () => assert.equal(await message(pageB, "hi alice").getAttribute("data-status"), "sent"));
    // Each side: a menu on its own message (in every tab), none on the other's.
    for (const [page, own, theirs] of [[pageA1, "hello bob", "hi alice"], [pageA2, "hello bob", "hi alice"],
      [pageB, "hi alice", "hello bob"]]) {
      assert.equal(await message(page, own).getByTestId("message-menu").count(), 1, `menu on ${own}`);
      assert.equal(await message(page, theirs).getByTestId("message-menu").count(), 0, `no menu on ${theirs}`);
    }
    assert.equal(await menuButtons(pageB).count(), 1);
    await openMenu(pageA1, "hello bob");
    assert.deepEqual(await message(pageA1, "hello bob").getByRole("menuitem").allTextContents(), ["Edit", "Delete"]);
    await shot(pageA1, "A1-menu");
    await message(pageA1, "hello bob").getByTestId("message-menu").click(); // closes it
    await eventually(async () => assert.equal(await pageA1.getByTestId("message-menu-items").count(), 0));
  });

  test("delete: gone from the tab that asked, the other tab and the peer's view, live and after a reload", async () => {
    await send(pageA1, "oops, wrong chat");
    for (const page of [pageA1, pageA2, pageB]) {
      await expectConversation(page, ["hello bob", "hi alice", "oops, wrong chat"]);
    }
    await eventually(async () => assert.equal(await message(pageA1, "oops, wrong chat").getAttribute("data-status"), "sent"));
    await openMenu(pageA1, "oops, wrong chat");
    await message(pageA1, "oops, wrong chat").getByTestId("message-delete").click();
    for (const page of [pageA1, pageA2, pageB]) await expectConversation(page, ["hello bob", "hi alice"]);
    await shot(pageB, "B-after-delete");

    // From the other tab (node 2) a message bob has not read yet: his unread count loses it too.
    await item(pageB, "bob").click(); // bob looks at his own entry
    await send(pageA2, "this one neither");
    await eventually(async () => assert.equal(await unreadOf(pageB, "alice"), 1));
    await expectConversation(pageA1, ["hello bob", "hi alice", "this one neither"]);
    await eventually(async () => assert.equal(await message(pageA2, "this one neither").getAttribute("data-status"), "sent"));
    await openMenu(pageA2, "this one neither");
    await message(pageA2, "this one neither").getByTestId("message-delete").click();
    for (const page of [pageA1, pageA2]) await expectConversation(page, ["hello bob", "hi alice"]);
    await eventually(async () => assert.equal(await unreadOf(pageB, "alice"), 0, "no longer unread"));
    await item(pageB, "alice").click();
    await expectConversation(pageB, ["hello bob", "hi alice"]);

    // Both histories lost them for good.
    await reloadInto(pageB, "bob", "alice");
    await expectConversation(pageB, ["hello bob", "hi alice"]);
    await reloadInto(pageA2, "alice", "bob");
    await expectConversation(pageA2, ["hello bob", "hi alice"]);
  });

  test("edit: the new content, marked \"edited\", in the other tab and the peer's view, live and after a reload", async () => {
    await send(pageA2, "see you at 5");
    for (const page of [pageA1, pageA2, pageB]) await expectConversation(page, ["hello bob", "hi alice", "see you at 5"]);
    await eventually(async () => assert.equal(await message(pageA1, "see you at 5").getAttribute("data-status"), "sent"));
    assert.equal(await pageB.getByTestId("message-edited").count(), 0, "nothing edited yet");
    await edit(pageA1, "see you at 5", "see you at 6");
    const expected = [["hello bob", false], ["hi alice", false], ["see you at 6", true]];
    for (const page of [pageA1, pageA2, pageB]) {
      await eventually(async () => assert.deepEqual(await edits(page), expected));
    }
    assert.equal(await pageA1.getByTestId("edit-form").count(), 0, "the editor closed once the server took it");
    await shot(pageB, "B-sees-edited");

    // Refused (longer than MAX_MESSAGE_BYTES): the server's reason under the message, the editor
    // stays open, and nobody's copy changes.
    await edit(pageA1, "see you at 6", "x".repeat(MAX_MESSAGE_BYTES + 1));
    // (The editor stands in for the message's content meanwhile: the reason is the page's only one.)
    await eventually(async () => assert.equal(
      (await pageA1.getByTestId("message-change-error").textContent()).trim(),
      `content is longer than ${MAX_MESSAGE_BYTES} bytes`));
    assert.equal(await pageA1.getByTestId("edit-form").count(), 1);
    await shot(pageA1, "A1-edit-refused");
    await pageA1.getByTestId("edit-cancel").click();
    assert.deepEqual(await edits(pageA1), expected);

    // bob edits his own message: alice's tabs follow.
    await edit(pageB, "hi alice", "hi alice!");
    const both = [["hello bob", false], ["hi alice!", true], ["see you at 6", true]];
    for (const page of [pageA1, pageA2, pageB]) {
      await eventually(async () => assert.deepEqual(await edits(page), both));
    }
    await reloadInto(pageB, "bob", "alice");
    await eventually(async () => assert.deepEqual(await edits(pageB), both));
    await reloadInto(pageA1, "alice", "bob");
    await eventually(async () => assert.deepEqual(await edits(pageA1), both));
  });

  test("block: the mark in the header and the list; a blocked user's messages never reach any tab, even after unblocking", async () => {
    assert.equal(await blockedInHeader(pageA1), false);
    assert.equal(await pageA1.getByTestId("block-toggle").textContent(), "Block");
    await pageA1.getByTestId("block-toggle").click();
    await eventually(async () => assert.equal(await blockedInHeader(pageA1), true));
    assert.equal(await blockedInList(pageA1, "bob"), true);
    assert.equal(await pageA1.getByTestId("block-toggle").textContent(), "Unblock");
    await shot(pageA1, "A1-blocked-bob");

    // bob's message is his (stored in his history) but never alice's.
    const before = await panelTexts(pageA1);
    await send(pageB, "can you hear me?");
    await eventually(async () => assert.equal(await message(pageB, "can you hear me?").getAttribute("data-status"), "sent"));
    // alice's other tab learns of the block from `users` (a reload): the mark, no message, not unread.
    await pageA2.reload();
    await eventually(async () => assert.equal(await me(pageA2), "alice"));
    await eventually(async () => assert.equal(await blockedInList(pageA2, "bob"), true));
    assert.equal(await unreadOf(pageA2, "bob"), 0, "a blocked message is never unread");
    await item(pageA2, "bob").click();
    assert.equal(await blockedInHeader(pageA2), true);
    assert.deepEqual(await panelTexts(pageA2), before);
    // alice finds bob: the result is marked too.
    await pageA1.getByTestId("search-input").fill("bo");
    await eventually(async () =>
      assert.equal(await pageA1.locator('[data-testid="search-result"][data-username="bob"] [data-testid="search-result-blocked"]').count(), 1));
    await shot(pageA1, "A1-search-blocked");
    await pageA1.getByTestId("search-input").fill("");

    // Unblocked: what comes next arrives in both tabs, after the conversation as it was; what
    // was dropped stays dropped.
    await pageA1.getByTestId("block-toggle").click();
    await eventually(async () => assert.equal(await blockedInHeader(pageA1), false));
    assert.equal(await blockedInList(pageA1, "bob"), false);
    await send(pageB, "and now?");
    for (const page of [pageA1, pageA2]) await expectConversation(page, [...before, "and now?"]);
    await expectConversation(pageB, [...before, "can you hear me?", "and now?"]);
    await reloadInto(pageA2, "alice", "bob");
    await expectConversation(pageA2, [...before, "and now?"]);
    assert.equal(await blockedInHeader(pageA2), false);
    assert.equal(await blockedInList(pageA2, "bob"), false);
  });
});

describe("client moderation: the edit window (EDIT_WINDOW_SECS=1)", () => {
  let cluster, browser;

  before(async () => {
    assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
    cluster = await startCluster({ nodes: 1, name: "moderation-window", env: { EDIT_WINDOW_SECS: "1" } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
  });

  test("once the window has closed the server's \"too late to edit\" shows, and Edit is no longer offered", async () => {
    const page = await newBrowserPage(browser, cluster.nodes[0].url, "W");
    await login(page, "wendy");
    await item(page, "wendy").click(); // a note to oneself
    await send(page, "draft");
    await eventually(async () => assert.equal(await message(page, "draft").getAttribute("data-status"), "sent"));
    // The client learns of the window only by trying: edit until the server says no. Every
    // try waits for the server's answer (the editor closing, or the reason shown).
    const deadline = Date.now() + 20000;
    let content = "draft";
    for (let attempt = 1; ; attempt++) {
      assert.ok(Date.now() < deadline, "the window closes");
      await edit(page, content, `draft ${attempt}`);
      const answer = await eventually(async () => {
        if (await page.getByTestId("message-change-error").count()) return "refused";
        assert.equal(await page.getByTestId("edit-form").count(), 0, "an answer came");
        return "taken";
      });
      if (answer === "refused") break;
      content = `draft ${attempt}`;
      await eventually(async () => assert.deepEqual(await panelTexts(page), [content]));
    }
    assert.equal((await page.getByTestId("message-change-error").textContent()).trim(), "too late to edit");
    await shot(page, "W-too-late");
    await page.getByTestId("edit-cancel").click();
    assert.deepEqual(await panelTexts(page), [content]);
    // Only Delete is left, and it still works.
    await openMenu(page, content);
    assert.deepEqual(await message(page, content).getByRole("menuitem").allTextContents(), ["Delete"]);
    await message(page, content).getByTestId("message-delete").click();
    await eventually(async () => assert.deepEqual(await panelTexts(page), []));
    await page.context().close();
  });
});
