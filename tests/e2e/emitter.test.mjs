// The npm `@socket.io/redis-emitter` (v5, `new Emitter(redisClient)`, key `socket.io`), as a
// backend beside the server uses it, against two nodes: on a standalone Redis, and on a Redis
// Cluster (where the emitter's plain PUBLISH must reach the nodes' classic subscriptions).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { createClient, createCluster } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { startCluster, pollUntil } from "./harness.mjs";

// A user's socket: its `session` read.
async function join(cluster, nodeIndex, auth) {
  const client = cluster.client(nodeIndex, { auth });
  const session = await client.next("session");
  return { client, userID: session.userID, sessionID: session.sessionID };
}

// Every argument of the next `event` on `client`.
async function nextArgs(client, event) {
  let args;
  await client.next(event, { filter: (...all) => ((args = all), true) });
  return args;
}

// Where a node serves /metrics (METRICS_ADDR=127.0.0.1:0: the log names the port).
async function metricsUrl(node) {
  return pollUntil(() => {
    const log = fs.readFileSync(node.logFile, "utf8");
    const found = log.match(/metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    return found && found[1];
  }, `the metrics address in ${node.logFile}`);
}

async function metric(url, sample) {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

for (const mode of ["standalone", "cluster"]) {
  describe(`the npm Socket.IO emitter on a ${mode} Redis`, () => {
    let cluster, redis, emitter;
    // alice and dave have a socket on each node; bob is on node 2, carol on node 1.
    let alice1, alice2, bob, carol, dave1, dave2;

    before(async () => {
      cluster = await startCluster({
        nodes: 2,
        name: `emitter-${mode}`,
        redisCluster: mode === "cluster",
        env: { METRICS_ADDR: "127.0.0.1:0" },
      });
      redis = mode === "cluster"
        ? createCluster({ rootNodes: cluster.redisNodes.map((a) => ({ url: `redis://${a}` })) })
        : createClient({ url: cluster.redisUrl });
      await redis.connect();
      emitter = new Emitter(redis);
      alice1 = await join(cluster, 0, { username: "alice" });
      alice2 = await join(cluster, 1, { sessionID: alice1.sessionID });
      bob = await join(cluster, 1, { username: "bob" });
      carol = await join(cluster, 0, { username: "carol" });
      dave1 = await join(cluster, 0, { username: "dave" });
      dave2 = await join(cluster, 1, { sessionID: dave1.sessionID });
    });

    after(async () => {
      if (redis) await redis.quit();
      if (cluster) await cluster.stop();
    });

    test("to(userID) reaches each socket of that user on both nodes, and nobody else", async () => {
      emitter.to(alice1.userID).emit("notice", { hello: 1 });
      assert.deepEqual(await alice1.client.next("notice"), { hello: 1 });
      assert.deepEqual(await alice2.client.next("notice"), { hello: 1 });
      // Each node applied the notice before alice's socket there got it; a marker published
      // after that reaches bob and carol after anything the notice could have sent them.
      emitter.to(bob.userID).emit("marker");
      emitter.to(carol.userID).emit("marker");
      await bob.client.next("marker");
      await carol.client.next("marker");
      assert.deepEqual(bob.client.received("notice"), []);
      assert.deepEqual(carol.client.received("notice"), []);
    });

    test("emit() reaches every socket on both nodes", async () => {
      emitter.emit("to everyone", "hi");
      for (const user of [alice1, alice2, bob, carol, dave1, dave2]) {
        assert.equal(await user.client.next("to everyone"), "hi");
      }
    });

    test("except(userID) leaves that user's sockets out", async () => {
      emitter.except(alice1.userID).emit("all but alice", 1);
      for (const user of [bob, carol, dave1, dave2]) {
        assert.equal(await user.client.next("all but alice"), 1);
      }
      emitter.to(alice1.userID).emit("marker");
      for (const user of [alice1, alice2]) {
        await user.client.next("marker");
        assert.deepEqual(user.client.received("all but alice"), []);
      }
    });

    test("several arguments arrive as several arguments, binary and dates as the reference sends them", async () => {
      const when = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
      emitter.to(bob.userID).emit("many", 1, "two", { three: [3] }, null, Buffer.from([5, 6]), when);
      const args = await nextArgs(bob.client, "many");
      assert.equal(args.length, 6);
      assert.deepEqual(args.slice(0, 4), [1, "two", { three: [3] }, null]);
      assert.deepEqual(Buffer.from(args[4]), Buffer.from([5, 6]));
      assert.equal(args[5], "2024-02-29T12:34:56.789Z");
    });

    test("in(userID).disconnectSockets(true) closes each socket of that user on both nodes", async () => {
      emitter.in(dave1.userID).disconnectSockets(true);
      assert.equal(await dave1.client.next("disconnect"), "io server disconnect");
      assert.equal(await dave2.client.next("disconnect"), "io server disconnect");
      // Everyone else is still connected, and still served.
      emitter.emit("after the disconnect");
      for (const user of [alice1, alice2, bob, carol]) {
        await user.client.next("after the disconnect");
        assert.equal(user.client.socket.connected, true);
      }
      assert.deepEqual(dave1.client.received("after the disconnect"), []);
    });

    test("a malformed packet is counted and ignored; the nodes keep serving", async () => {
      const urls = await Promise.all(cluster.nodes.map(metricsUrl));
      const sample = 'privmsg_emitter_packets_total{result="malformed"}';
      const before = await Promise.all(urls.map((u) => metric(u, sample)));
      // A msgpack string that claims 5 bytes and holds 2; then a request that is not JSON.
      await redis.publish("socket.io#/#", Buffer.from([0xa5, 0x61, 0x62]));
      await redis.publish("socket.io-request#/#", "{not json");
      for (const [i, url] of urls.entries()) {
        await pollUntil(async () => (await metric(url, sample)) >= before[i] + 2, `node ${i + 1} counts both`);
      }
      emitter.emit("after the garbage", true);
      for (const user of [alice1, alice2, bob, carol]) {
        assert.equal(await user.client.next("after the garbage"), true);
        assert.equal(user.client.socket.connected, true);
      }
      for (const node of cluster.nodes) {
        assert.equal((await fetch(`${node.url}/readyz`)).status, 200);
      }
    });
  });
}
