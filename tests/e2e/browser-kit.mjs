// What the Chromium tests share: how to launch the browser here, and how to read the page.
import assert from "node:assert/strict";
import { WAIT_MS } from "./harness.mjs";

export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
// This machine has no outside network: keep Chromium from trying to reach it.
// (Playwright gives each launch a fresh temporary --user-data-dir of its own.)
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// Retry an assertion until it passes or time runs out; then fail with its last error.
export async function eventually(check, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const item = (page, name) => page.locator(`[data-testid="user-item"][data-username="${name}"]`);
export const online = (page, name) =>
  item(page, name).locator('[data-testid="user-status"]').getAttribute("data-online");
export const panelTexts = (page) =>
  page.locator('[data-testid="message-panel"] [data-testid="message-content"]').allTextContents();
export const me = (page) => page.getByTestId("me").textContent();

export async function expectOnline(page, name, expected) {
  await eventually(async () => assert.equal(await online(page, name), String(expected), `${name} online?`));
}
export async function expectConversation(page, expected) {
  await eventually(async () => assert.deepEqual(await panelTexts(page), expected));
}
export async function login(page, username) {
  await page.getByTestId("username-input").fill(username);
  await page.getByTestId("username-submit").click();
  await eventually(async () => assert.equal(await me(page), username));
  await eventually(async () =>
    assert.equal(await item(page, username).getByTestId("user-name").textContent(), `${username} (yourself)`));
}
export async function send(page, text) {
  await page.getByTestId("message-input").fill(text);
  await page.getByTestId("message-send").click();
}

// A new page at `url` whose console and errors go to `log`, each line tagged with `who`.
export async function openLoggedPage(ctx, url, who, log) {
  const page = await ctx.newPage();
  page.on("console", (m) => log.write(`[${who}] ${m.type()}: ${m.text()}\n`));
  page.on("pageerror", (e) => log.write(`[${who}] pageerror: ${e.message}\n`));
  await page.goto(url);
  return page;
}
