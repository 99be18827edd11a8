// A webhook receiver for benchmarks: answers every POST 204 at once and counts them. On SIGTERM
// prints `{ received, secs, perSec }` (secs from the first request to the last) as JSON.
// Usage: node benches/webhook-receiver.mjs PORT
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
let received = 0;
let first = 0;
let last = 0;
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const now = Date.now();
    if (received === 0) first = now;
    last = now;
    received += 1;
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  const secs = (last - first) / 1000;
  console.log(JSON.stringify({ received, secs, perSec: secs > 0 ? received / secs : 0 }));
  process.exit(0);
});
