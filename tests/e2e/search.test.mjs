// "Find someone to talk to" in the Vue client, in Chromium, in both directory scopes
// (docs/protocol.md, "Directory scope"): A finds B by a case-insensitive prefix of B's
// name, opens the conversation from the result and writes; B's page shows A and the message.
// In `contacts` scope neither sees the other before that first message.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startCluster, ARTIFACTS, CLIENT_DIR } from "./harness.mjs";
import {
  CHROMIUM, CHROMIUM_ARGS, eventually, item, login, send, expectConversation, expectOnline, openLoggedPage,
} from "./browser-kit.mjs";

const results = (page) => page.locator('[data-testid="search-result"]');
const resultNames = (page) => results(page).evaluateAll((els) => els.map((e) => e.dataset.username));
const listed = (page) => page.locator('[data-testid="user-item"]').evaluateAll((els) => els.map((e) => e.dataset.username));

for (const scope of ["all", "contacts"]) {
  describe(`browser search, USERS_SCOPE=${scope}`, () => {
    let cluster, browser, pageA, pageB;
    const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `search-${scope}-${name}.png`) });
    const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, `search-${scope}-console.log`));

    before(async () => {
      assert.ok(fs.existsSync(path.join(CLIENT_DIR, "index.html")), "build the client first: cd client && npm run build");
      cluster = await startCluster({ nodes: 2, name: `search-${scope}`, env: { USERS_SCOPE: scope } });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const ctx = () => browser.newContext({ viewport: { width: 1000, height: 700 } });
      pageA = await openLoggedPage(await ctx(), cluster.nodes[0].url, "A", consoleLog);
      pageB = await openLoggedPage(await ctx(), cluster.nodes[1].url, "B", consoleLog);
    });
    after(async () => {
      if (browser) await browser.close();
      if (cluster) await cluster.stop();
      consoleLog.end();
    });

    test("each user's list starts as the scope says", async () => {
      await login(pageB, "Bobby Tables");
      await login(pageA, "alice");
      if (scope === "all") {
        await expectOnline(pageA, "Bobby Tables", true);
      } else {
        // B logged in first, so B's arrival is long announced: A still lists only itself.
        await eventually(async () => assert.deepEqual(await listed(pageA), ["alice"]));
        assert.deepEqual(await listed(pageB), ["Bobby Tables"]);
      }
    });

    test("A finds B by a lower-case prefix, never itself", async () => {
      await pageA.getByTestId("search-input").fill("bOB");
      await eventually(async () => assert.deepEqual(await resultNames(pageA), ["Bobby Tables"]));
      await shot(pageA, "A-found-bob");
      await pageA.getByTestId("search-input").fill("ali");
      await eventually(async () => assert.equal(await pageA.getByTestId("search-none").count(), 1));
      await pageA.getByTestId("search-input").fill("nobody-has-this-name");
      await eventually(async () => assert.equal(await pageA.getByTestId("search-none").count(), 1));
    });

    test("A opens the conversation from the result and writes; B sees A and the message", async () => {
      await pageA.getByTestId("search-input").fill("bo");
      await eventually(async () => assert.equal(await results(pageA).count(), 1));
      await results(pageA).first().click();
      assert.equal(await pageA.getByTestId("search-results").count(), 0, "the search closes");
      await eventually(async () => assert.deepEqual(await listed(pageA), ["alice", "Bobby Tables"]));
      await send(pageA, "found you");
      await eventually(async () =>
        assert.equal(await pageA.locator('[data-testid="message"]').last().getAttribute("data-status"), "sent"));
      await expectOnline(pageB, "alice", true);
      await item(pageB, "alice").click();
      await expectConversation(pageB, ["found you"]);
      await shot(pageB, "B-introduced");
    });

    test("after a reload both still list each other, with the conversation", async () => {
      await pageB.reload();
      await item(pageB, "alice").click();
      await expectConversation(pageB, ["found you"]);
      await pageA.reload();
      await item(pageA, "Bobby Tables").click();
      await expectConversation(pageA, ["found you"]);
    });

    test("a search the server refuses shows its reason", async () => {
      // The input stops at 64 characters; lift that to see the server refuse a longer query.
      await pageA.getByTestId("search-input").evaluate((el) => el.removeAttribute("maxlength"));
      await pageA.getByTestId("search-input").fill("x".repeat(65));
      await eventually(async () =>
        assert.equal(await pageA.getByTestId("search-error").textContent(), "query must be a string of 1 to 64 characters"));
    });
  });
}
