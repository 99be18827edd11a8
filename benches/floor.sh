#!/usr/bin/env bash
# The floor under the server's CPU per message: the nodes scenario (200 users, 3,000 msg/s) run
# on `stack-floor` (tools/floor: socketioxide's socket work for a private message alone, one
# node, no Redis) and on the server (1 node, then 2), ROUNDS times interleaved, so that the
# figures are read as ratios within one invocation on this shared machine.
#
#   benches/floor.sh
#   ROUNDS=3 NODE_WORKER_THREADS=1 NODES_DURATION=15 benches/floor.sh
#   SERVER_BIN=/tmp/other-build benches/floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
threads=${NODE_WORKER_THREADS:-1}
server_bin=${SERVER_BIN:-target/release/privmsg-server}
cargo build --release --quiet -p privmsg -p stack-floor -p loadgen --bins
work=$(mktemp -d -t privmsg-floor-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run LABEL BIN NODES: one nodes run; prints its line of the table.
run() {
  local label=$1 bin=$2 nodes=$3 dir="$work/$1-$round"
  NODE_COUNTS=$nodes SERVER_BIN=$bin NODE_WORKER_THREADS=$threads RESULTS_DIR=$dir \
    benches/run.sh --scenarios nodes >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
  python3 - "$dir/nodes-$nodes.json" "$round" "$label" "$nodes" <<'PY'
import json, sys
path, rnd, label, nodes = sys.argv[1:]
m = json.load(open(path))["phases"]["message"]
cpu = m["cpu"]
print(f"{rnd:>5}  {label:<7} {nodes:>5}  {m['server_cpu_ms_per_1000_delivered']:>17.1f}"
      f"  {m['redis_cpu_ms_per_1000_delivered']:>16.1f}  {cpu['loadgen_cores']:>13.2f}  {m['latency']['p99_ms']:>6.1f}  {m['lost']:>4}")
PY
}

echo "WORKER_THREADS=$threads, $rounds rounds; server: $server_bin"
echo "round  build   nodes  server core-ms/1k  redis core-ms/1k  loadgen cores  p99 ms  lost"
for round in $(seq "$rounds"); do
  run floor target/release/stack-floor 1
  run server "$server_bin" 1
  run server "$server_bin" 2
done
echo "reproduce: ROUNDS=$rounds NODE_WORKER_THREADS=$threads NODES_DURATION=${NODES_DURATION:-15} benches/floor.sh"
