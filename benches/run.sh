#!/usr/bin/env bash
# Benchmarks of the server with the load generator (tools/loadgen), all on this machine:
# its own redis-server (free port, temp dir) and release server nodes, restarted for every
# scenario so that each starts from an empty Redis and a fresh process (clean RSS figures).
#
#   benches/run.sh            # every scenario (~10 min); JSON in benches/results/, plots too
#   benches/run.sh --smoke    # CI: 2 nodes, 20 users, 3 s of messages, --assert-no-loss
#   benches/run.sh --quick    # shorter sweep, no hold scenario (a sanity run)
#   PERF=1 benches/run.sh     # also a perf profile of one node at saturation
#
# Environment: RATES (sweep, msg/s), DURATION (s per rate), HOLD_USERS (idle connections),
# SCENARIOS (a subset of "messages sessions big hold", to rerun only those).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  --smoke) mode=smoke ;;
  --quick) mode=quick ;;
  "") ;;
  *) echo "usage: $0 [--smoke|--quick]" >&2; exit 2 ;;
esac

results=benches/results
mkdir -p "$results"
work=$(mktemp -d -t privmsg-bench.XXXXXX)
node_pids=()
redis_pid=
urls=()
stop_stack() {
  for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  node_pids=() redis_pid= urls=()
}
trap 'stop_stack; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

source scripts/lib.sh
need_packages redis-server:redis-server redis-cli:redis-tools curl:curl

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_stack NODES: a fresh Redis and NODES server nodes; sets urls, node_pids, redis_pid.
start_stack() {
  local nodes=$1 rport port i
  rport=$(free_port)
  rm -rf "$work/redis" && mkdir -p "$work/redis"
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work/redis" --logfile "$work/redis/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export REDIS_URL="redis://127.0.0.1:$rport"
  for i in $(seq "$nodes"); do
    port=$(free_port)
    # No per-socket rate limit: the load generator sends hundreds of messages/s per user.
    PORT=$port RATE_LIMIT_PER_SEC=0 RUST_LOG=warn \
      target/release/privmsg-server >"$work/node$i.log" 2>&1 &
    node_pids+=($!)
    urls+=(--url "http://127.0.0.1:$port")
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  done
}

pid_args() {
  local pid
  for pid in "${node_pids[@]}"; do printf -- '--server-pid %s ' "$pid"; done
  printf -- '--redis-pid %s' "$redis_pid"
}

# lg NAME ARGS...: one load-generator run; the command line is printed, the JSON saved.
lg() {
  local name=$1; shift
  echo "load before $name: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
  local cmd=(target/release/loadgen "${urls[@]}" $(pid_args) --json --label "$name" "$@")
  echo "+ ${cmd[*]}"
  "${cmd[@]}" >"$results/$name.json" || echo "loadgen exited $? ($name)" >&2
}

echo "==> building (release)"
cargo build --release --quiet -p privmsg -p loadgen --bins

if [ "$mode" = smoke ]; then
  start_stack 2
  target/release/loadgen "${urls[@]}" --smoke
  exit $?
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "nproc: $(nproc)"
  lscpu | grep -E 'Model name|^CPU\(s\)|Thread|MHz' || true
  grep MemTotal /proc/meminfo
  uname -sr
  echo "ulimit -n: $(ulimit -n) (hard $(ulimit -Hn))"
  echo "server commit: $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo ' + uncommitted changes')"
} | tee "$results/machine.txt"

rates=${RATES:-"2000 5000 10000 20000 40000 60000"}
duration=${DURATION:-10}
[ "$mode" = quick ] && rates=${RATES:-"2000 10000"} && duration=${DURATION:-5}

scenarios=${SCENARIOS:-"messages sessions big hold"}
[ "$mode" = quick ] && scenarios=${SCENARIOS:-"messages sessions big"}
want() { [[ " $scenarios " == *" $1 "* ]]; }

want messages && echo "==> private messages: 200 users on 2 nodes, random pairs"
want messages && for rate in $rates; do
  start_stack 2
  perf_job=
  if [ "${PERF:-0}" = 1 ] && [ "$rate" = "$(echo "$rates" | awk '{print $NF}')" ] && command -v perf >/dev/null; then
    (sleep 4; perf record -e cpu-clock -F 499 -g -o "$work/perf.data" -p "${node_pids[0]}" -- sleep 5 \
      >/dev/null 2>&1; perf report -i "$work/perf.data" --no-children --sort dso,symbol -g none \
      --stdio 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-150 | head -40 >"$results/perf-node1.txt" || true) &
    perf_job=$!
  fi
  lg "message-$rate" --users 200 --batch 50 --phase message --phase restore --restore-sample 10 \
    --rate "$rate" --duration "$duration" --grace 10
  [ -z "$perf_job" ] || wait "$perf_job"
  stop_stack
done

want sessions && echo "==> connect -> users: 100 users joining 10 at a time, with stored sessions"
want sessions && for sessions in 0 1000 10000; do
  start_stack 2
  lg "connect-sessions-$sessions" --users 100 --batch 10 --seed-sessions "$sessions" \
    --redis-url "$REDIS_URL"
  stop_stack
done

if want big; then
  echo "==> 5,000 users joining in batches of 100"
  start_stack 2
  lg "connect-5000" --users 5000 --batch 100 --connect-timeout 60
  stop_stack
fi

if want hold; then
  hold_users=${HOLD_USERS:-19000}
  echo "==> one node holding $hold_users idle connections (open-file limit $(ulimit -n))"
  start_stack 1
  lg "hold-$hold_users" --users "$hold_users" --batch 200 --connect-timeout 60 \
    --connect-budget "${HOLD_BUDGET:-180}" --phase hold --hold 10
  stop_stack
fi

echo "==> plots"
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib
python3 benches/plot.py "$results"
echo "==> results in $results/"
