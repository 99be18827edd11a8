#!/usr/bin/env bash
# The nodes scenario (200 users, 3,000 msg/s) on a Redis Cluster of three masters: two server
# nodes per given build, each build in turn on a fresh cluster, ROUNDS times interleaved.
# Prints, per run, the servers' and the masters' CPU per 1,000 delivered (the masters summed
# from /proc) and the load generator's cores, to read as ratios within one invocation.
#
#   benches/cluster-nodes.sh target/release/privmsg-server [OTHER_BUILD ...]
#   ROUNDS=3 NODES_DURATION=15 benches/cluster-nodes.sh /tmp/before /tmp/after
#   NODE_USERS_SCOPE=contacts ...   # the nodes' USERS_SCOPE (default all), as in benches/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=(target/release/privmsg-server)
rounds=${ROUNDS:-1}

source scripts/lib.sh
need_packages redis-server:redis-server redis-cli:redis-tools

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# cluster_port: a free port whose cluster bus (10,000 above it) is free too, so at most 55535.
cluster_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 55535)
    try:
        for p in (port, port + 10000):
            socket.socket().bind(("127.0.0.1", p))
        print(port)
        break
    except OSError:
        pass'
}
# ticks PID...: user + system clock ticks of these processes so far.
ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}

work=$(mktemp -d -t privmsg-cluster-bench.XXXXXX)
masters=()
stop_cluster() {
  for pid in "${masters[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${masters[@]}"; do wait "$pid" 2>/dev/null || true; done
  masters=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT

# start_cluster: three fresh masters, every slot assigned; sets masters, seeds.
start_cluster() {
  local ports=() port i
  rm -rf "$work/cluster"
  for i in 1 2 3; do
    port=$(cluster_port)
    mkdir -p "$work/cluster/$i"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file "$work/cluster/$i/nodes.conf" \
      --dir "$work/cluster/$i" --logfile "$work/cluster/$i/redis.log" &
    masters+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
    >"$work/cluster/create.log"
  for _ in $(seq 200); do
    redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.05
  done
  seeds=$(printf '127.0.0.1:%s,' "${ports[@]}")
  seeds=${seeds%,}
}

for round in $(seq "$rounds"); do
  for build in "${builds[@]}"; do
    start_cluster
    urls="" pids=""
    for i in 1 2; do
      port=$(free_port)
      # As benches/run.sh's launch_node: no per-socket or abuse limits, no metrics listener.
      PORT=$port REDIS_CLUSTER_NODES=$seeds RATE_LIMIT_PER_SEC=0 RUST_LOG=warn \
        WORKER_THREADS=${NODE_WORKER_THREADS:-0} MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0} \
        NEW_SESSIONS_PER_MINUTE=1000000 NEW_SESSIONS_BURST=1000000 MAX_CONNECTIONS=10000000 \
        METRICS_ADDR=off USERS_SCOPE=${NODE_USERS_SCOPE:-all} "$build" >>"$work/node$i.log" 2>&1 &
      pids="$pids $!"
      urls="$urls http://127.0.0.1:$port"
      for _ in $(seq 400); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    done
    before=$(ticks "${masters[@]}")
    TARGET_URLS="${urls# }" TARGET_PIDS="${pids# }" TARGET_NODES=2 NODE_COUNTS=2 \
      RESULTS_DIR="$work/results" benches/run.sh --scenarios nodes >"$work/run.log" 2>&1
    after=$(ticks "${masters[@]}")
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait $pids 2>/dev/null || true
    stop_cluster
    python3 - "$work/results/nodes-2.json" "$((after - before))" "$(getconf CLK_TCK)" \
      "$build" "$round" <<'EOF'
import json, sys
path, ticks, hz, build, round_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
run = json.load(open(path))
message = run["phases"]["message"]
cpu, delivered = message["cpu"], message["delivered"]
# The masters' ticks span the whole run (connect and message phases): an upper bound.
print(f"round {round_} {build}: servers {message['server_cpu_ms_per_1000_delivered']:.1f} core-ms/1000, "
      f"masters (whole run) {1e6 * ticks / hz / delivered:.1f}, loadgen {cpu['loadgen_cores']:.2f} cores, "
      f"p99 {message['latency']['p99_ms']:.1f} ms, lost {message['lost']}")
EOF
  done
done
echo "reproduce: ROUNDS=$rounds benches/cluster-nodes.sh ${builds[*]}"
