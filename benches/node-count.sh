#!/usr/bin/env bash
# What adding nodes costs per message, at a fixed load and with the load growing with the nodes
# (issue 10's "4 nodes ÷ 2 nodes"): the nodes scenario on 2 nodes at RATE, 4 nodes at RATE and
# 4 nodes at 2 × RATE, and the floor (`tools/floor`, socketioxide's socket work alone, one node,
# no Redis) at RATE and RATE / 2, which shows what halving a node's rate costs with none of our
# work. ROUNDS times interleaved, so that the figures are read as ratios within one invocation
# on this shared machine.
#
#   benches/node-count.sh
#   ROUNDS=3 RATE=3000 NODE_WORKER_THREADS=1 NODES_DURATION=15 benches/node-count.sh
#   SERVER_BIN=/tmp/other-build benches/node-count.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-2}
rate=${RATE:-3000}
threads=${NODE_WORKER_THREADS:-1}
server_bin=${SERVER_BIN:-target/release/privmsg-server}
cargo build --release --quiet -p privmsg -p stack-floor -p loadgen --bins
work=$(mktemp -d -t privmsg-node-count-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run LABEL BIN NODES RATE: one nodes run; prints its line and keeps its figure in $work/LABEL.
run() {
  local label=$1 bin=$2 nodes=$3 r=$4 dir="$work/$1-$round"
  NODE_COUNTS=$nodes NODES_RATE=$r SERVER_BIN=$bin NODE_WORKER_THREADS=$threads RESULTS_DIR=$dir \
    benches/run.sh --scenarios nodes >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
  python3 - "$dir/nodes-$nodes.json" "$round" "$label" "$work/$label" <<'PY'
import json, sys
path, rnd, label, keep = sys.argv[1:]
m = json.load(open(path))["phases"]["message"]
server = m["server_cpu_ms_per_1000_delivered"]
open(keep, "a").write(f"{server}\n")
print(f"{rnd:>5}  {label:<13} {server:>17.1f}  {m['redis_cpu_ms_per_1000_delivered']:>16.1f}"
      f"  {m['latency']['p99_ms']:>6.1f}  {m['lost']:>4}")
PY
}

half=$((rate / 2))
echo "WORKER_THREADS=$threads, $rounds rounds, RATE=$rate; server: $server_bin"
echo "round  run           server core-ms/1k  redis core-ms/1k  p99 ms  lost"
for round in $(seq "$rounds"); do
  run 2-nodes "$server_bin" 2 "$rate"
  run 4-nodes "$server_bin" 4 "$rate"
  run 4-nodes-2x "$server_bin" 4 $((rate * 2))
  run floor "target/release/stack-floor" 1 "$rate"
  run floor-half "target/release/stack-floor" 1 "$half"
done
python3 - "$work" <<'PY'
import statistics, sys
work = sys.argv[1]
def mean(label):
    return statistics.mean(float(x) for x in open(f"{work}/{label}").read().split())
base = mean("2-nodes")
print(f"4 nodes ÷ 2 nodes, same total rate:        {mean('4-nodes') / base:.2f}")
print(f"4 nodes at twice the rate ÷ 2 nodes:       {mean('4-nodes-2x') / base:.2f}")
print(f"floor at half the rate ÷ floor at the rate: {mean('floor-half') / mean('floor'):.2f}")
PY
echo "reproduce: ROUNDS=$rounds RATE=$rate NODE_WORKER_THREADS=$threads NODES_DURATION=${NODES_DURATION:-15} benches/node-count.sh"
