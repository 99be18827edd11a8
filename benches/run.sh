#!/usr/bin/env bash
# Benchmarks of the server with the load generator (tools/loadgen), all on this machine:
# its own redis-server (free port, temp dir) and release server nodes, restarted for every
# run so that each starts from an empty Redis and a fresh process (clean RSS figures).
#
#   benches/run.sh                  # every scenario (~10 min): results in target/bench-results/<time>/
#   benches/run.sh --publish        # the same, written to benches/results/ (the published figures)
#   benches/run.sh --smoke          # CI: 2 nodes, 20 users, 3 s of messages, --assert-no-loss
#   benches/run.sh --quick          # shorter sweep, no hold, nodes or knee (a sanity run)
#   benches/run.sh --scenarios "nodes knee"   # a subset of: messages sessions big hold nodes knee api emitter webhooks wait blocks
#                                              directory contacts soak
#                                             # directory contacts (issues 11 and 15; not in the default set)
#   PERF=1 benches/run.sh           # also a perf profile of one node at saturation
#
# Against servers already running (e.g. the Node.js reference, built by hand outside the
# repository as shared/bench/NODE-REFERENCE.md says): nothing is started or stopped, the given
# processes are measured.
#
#   TARGET_URLS="http://127.0.0.1:3000" TARGET_PIDS="101 102 103" TARGET_REDIS_PID=99 \
#     TARGET_NODES=2 LOADGEN_ARGS=--no-acks benches/run.sh --scenarios nodes
#
# Environment:
#   RESULTS_DIR    where results go (default target/bench-results/<UTC time>; --publish:
#                  benches/results); two runs given the same one are summarised together
#   SCENARIOS      as --scenarios
#   USERS          users of the messages, nodes and knee scenarios (200)
#   RATES, DURATION            messages sweep: msg/s offered, seconds per rate
#   NODE_COUNTS, NODES_RATE, NODES_DURATION   nodes: node counts ("2 4"), msg/s (3000), s (15)
#   KNEE_RATES, KNEE_DURATION, KNEE_P99_MS    knee: msg/s swept, s per rate (10), p99 bound (50)
#   API_RATES, API_DURATION    api: msg/s swept through POST /api/messages on one node, s per rate
#   REDIS_REPLICA  1: our Redis gets a replica (its own redis-server), for REDIS_WAIT_REPLICAS
#   NODE_REDIS_WAIT_REPLICAS   REDIS_WAIT_REPLICAS of the nodes (0), e.g. with REDIS_REPLICA=1
#                  for the knee with it: REDIS_REPLICA=1 NODE_REDIS_WAIT_REPLICAS=1 ... knee
#   (wait)         the nodes scenario on a master + replica with REDIS_WAIT_REPLICAS=1 against
#                  0, interleaved (off, on, on, off)
#   (webhooks)     the nodes scenario with WEBHOOK_EVENTS=message.created to a local receiver
#                  (benches/webhook-receiver.mjs), against webhooks off, interleaved
#   (blocks)       the nodes scenario with BLOCKS block-list entries stored before the run
#                  (default 10000: BLOCKS/10 users blocking 10 each, none of them a user of the
#                  run, so every message is stored and delivered as usual), against none,
#                  interleaved (none, some, some, none): what `block user` costs a message
#   EMITTER_RATE   emitter: emits/s a backend's @socket.io/redis-emitter sends beside the nodes
#                  scenario (1000), to random users
#   HOLD_USERS, HOLD_BUDGET    hold: idle connections (19000), seconds to connect them (180)
#   DIR_RSS_USERS, DIR_SESSIONS   directory (issue 11): users per RSS run ("1000 2000 5000"),
#                  stored sessions per connect run ("0 1000 10000 100000")
#   DIR_RSS_SCOPES   USERS_SCOPE of the RSS runs ("all contacts"; contacts: 4 contacts each)
#   CONTACTS_SESSIONS, SEED_CONTACTS, CONTACTS_PER_USER, SEARCH_RATE, SEARCH_DURATION,
#   CONTACTS_HOLD_USERS, CONTACTS_HOLD_BUDGET, HOLD_CONTACTS, CONTACTS_CONNECT_USERS
#                  contacts (issue 15): sessions seeded (1000000) and contacts each (0), contacts
#                  of the connecting users (50), searches/s (200) for s (20), users held by one
#                  node (19000) joined within s (60), with contacts each (4), users rejoining 10
#                  at a time (100; more samples give a steadier p99, same fan-out per batch)
#   NODE_USERS_SCOPE   USERS_SCOPE of the nodes of the other scenarios (all)
#   LOADGEN_ARGS   extra load-generator flags for every run (e.g. --no-acks)
#   BENCH_PROFILE  cargo profile of the binaries (release); dev only to check this script
#   SERVER_BIN     the server binary (default target/release/privmsg-server), e.g. an older
#                  build for a before/after run
#   NODE_WORKER_THREADS   WORKER_THREADS of each node (0: a thread per CPU)
#   MIMALLOC_ALLOW_THP    the nodes' allocator on transparent huge pages (0, as deployed; 1: mimalloc's default)
#   MONITOR_FILE   every command our Redis runs, as MONITOR prints them (for
#                  benches/script-replay.sh; MONITOR slows Redis down: not a run to quote)
#   TARGET_URLS    space-separated base URLs of running servers: use them, start nothing
#   TARGET_PIDS    their process ids (all of them: CPU is summed), for CPU and RSS
#   TARGET_REDIS_PID   their Redis's pid, for its CPU
#   TARGET_REDIS_URL   their Redis: sessions are seeded there, and it is emptied (FLUSHDB)
#                  before every run, as our own stack starts from an empty Redis
#   TARGET_NODES   how many server processes the target runs (labels the nodes scenario)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full publish=0 scenarios=${SCENARIOS:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --quick) mode=quick ;;
    --publish) publish=1 ;;
    --scenarios) scenarios=${2:?--scenarios needs a list}; shift ;;
    --scenarios=*) scenarios=${1#*=} ;;
    *) echo "usage: $0 [--smoke|--quick] [--publish] [--scenarios \"messages sessions big hold nodes knee api emitter webhooks wait blocks directory contacts soak\"]" >&2
       exit 2 ;;
  esac
  shift
done

external=0
[ -n "${TARGET_URLS:-}" ] && external=1
if [ "$external" = 1 ] && [ "$publish" = 1 ]; then
  echo "--publish writes our own figures: not with TARGET_URLS" >&2
  exit 2
fi

target_dir=${CARGO_TARGET_DIR:-target}
if [ "$publish" = 1 ]; then
  results=benches/results
else
  results=${RESULTS_DIR:-$target_dir/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
fi
# BENCH_PROFILE=dev: debug builds, only to check this script quickly (figures meaningless).
profile=${BENCH_PROFILE:-release}
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
loadgen_bin=$target_dir/$profile_dir/loadgen
server_bin=${SERVER_BIN:-$target_dir/$profile_dir/privmsg-server}
# Extra flags for every run, split on spaces on purpose.
read -r -a extra <<<"${LOADGEN_ARGS:-}"

work=$(mktemp -d -t privmsg-bench.XXXXXX)
# The server API's key for the api scenario (any 32+ characters; these nodes live for one run).
bench_api_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
node_pids=()
# Extra settings of the nodes a scenario starts (e.g. its webhooks), as NAME=value words.
node_env=()
redis_pid=
replica_pid=
urls=()
stop_stack() {
  if [ "$external" = 0 ]; then
    for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    if [ -n "$replica_pid" ]; then kill "$replica_pid" 2>/dev/null || true; wait "$replica_pid" 2>/dev/null || true; fi
  fi
  node_pids=() redis_pid= replica_pid= urls=()
}
trap 'stop_stack; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

source scripts/lib.sh
need_packages redis-server:redis-server redis-cli:redis-tools curl:curl

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis: a fresh, empty Redis of our own; sets redis_pid and exports REDIS_URL.
# With TARGET_URLS: the given Redis instead (emptied when TARGET_REDIS_URL is set).
start_redis() {
  local rport
  if [ "$external" = 1 ]; then
    redis_pid=${TARGET_REDIS_PID:-}
    if [ -n "${TARGET_REDIS_URL:-}" ]; then
      redis-cli -u "$TARGET_REDIS_URL" flushdb >/dev/null
      export REDIS_URL=$TARGET_REDIS_URL
    fi
    return
  fi
  rport=$(free_port)
  rm -rf "$work/redis" && mkdir -p "$work/redis"
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work/redis" --logfile "$work/redis/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export REDIS_URL="redis://127.0.0.1:$rport"
  if [ "${REDIS_REPLICA:-0}" = 1 ]; then start_replica "$rport"; fi
  # The capture ends with this Redis (redis-cli exits when it goes).
  if [ -n "${MONITOR_FILE:-}" ]; then redis-cli -p "$rport" monitor >"$MONITOR_FILE" & fi
}

# start_replica MASTER_PORT: a replica of our Redis (sets replica_pid), in sync when it returns.
start_replica() {
  local master=$1 port
  port=$(free_port)
  rm -rf "$work/replica" && mkdir -p "$work/replica"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --replicaof 127.0.0.1 "$master" --dir "$work/replica" --logfile "$work/replica/redis.log" &
  replica_pid=$!
  for _ in $(seq 200); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q master_link_status:up && return
    sleep 0.05
  done
  echo "the replica on port $port did not sync; its log:" >&2
  tail -20 "$work/replica/redis.log" >&2
  exit 1
}

# start_nodes NODES [SCOPE]: NODES fresh server nodes on $REDIS_URL, USERS_SCOPE=SCOPE (default
# NODE_USERS_SCOPE, else all); sets urls, node_pids. With TARGET_URLS: the given servers.
start_nodes() {
  local nodes=$1 scope=${2:-${NODE_USERS_SCOPE:-all}} port i
  if [ "$external" = 1 ]; then
    for i in $TARGET_URLS; do urls+=(--url "$i"); done
    read -r -a node_pids <<<"${TARGET_PIDS:-}"
    return
  fi
  for i in $(seq "$nodes"); do
    port=$(free_port)
    launch_node "$i" "$port" "$scope"
    node_pids+=("$launched")
    urls+=(--url "http://127.0.0.1:$port")
  done
}

# launch_node I PORT SCOPE: server node I on PORT, answering /healthz; sets launched (its pid).
launch_node() {
  local i=$1 port=$2 scope=$3 up=0
  # No per-socket rate limit: the load generator sends hundreds of messages/s per user.
  # No abuse limits either: every simulated user comes from 127.0.0.1, and the hold and
  # directory scenarios open more connections than MAX_CONNECTIONS' default. Nothing here
  # reads /metrics, and several nodes could not share its default port.
  # WORKER_THREADS as the node's default (a thread per CPU) unless NODE_WORKER_THREADS says.
  # MIMALLOC_ALLOW_THP as deployed (0, docs/deployment.md, "Memory") unless the environment says.
  PORT=$port RATE_LIMIT_PER_SEC=0 RUST_LOG=warn WORKER_THREADS=${NODE_WORKER_THREADS:-0} \
    MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0} \
    API_KEY=$bench_api_key NEW_SESSIONS_PER_MINUTE=1000000 NEW_SESSIONS_BURST=1000000 MAX_CONNECTIONS=10000000 \
    METRICS_ADDR=off USERS_SCOPE=$scope REDIS_WAIT_REPLICAS=${NODE_REDIS_WAIT_REPLICAS:-0} \
    env "${node_env[@]}" "$server_bin" >>"$work/node$i.log" 2>&1 &
  launched=$!
  # A node may load a large directory before it listens: wait up to 2 minutes, then say so.
  for _ in $(seq 2400); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && up=1 && break
    kill -0 "$launched" 2>/dev/null || break
    sleep 0.05
  done
  if [ "$up" = 0 ]; then
    echo "node $i (USERS_SCOPE=$scope) did not answer /healthz; its log:" >&2
    tail -20 "$work/node$i.log" >&2
    exit 1
  fi
}

# stop_nodes: the nodes only (the Redis and what was seeded into it stay).
stop_nodes() {
  if [ "$external" = 0 ]; then
    for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  node_pids=() urls=()
}

# start_stack NODES [SCOPE]: a fresh Redis and NODES server nodes.
start_stack() {
  start_redis
  start_nodes "$@"
}

# seed NAME SESSIONS ARGS...: stored sessions written into $REDIS_URL by the load generator
# before any node starts (a node that loads its directory at start then sees them at once);
# the command is printed, the JSON saved as NAME.json.
seed() {
  local name=$1 sessions=$2; shift 2
  local cmd=("$loadgen_bin" --seed-only --seed-sessions "$sessions" --redis-url "$REDIS_URL" \
    --json --label "$name" "$@")
  echo "+ ${cmd[*]}"
  "${cmd[@]}" >"$results/$name.json" || { echo "seeding failed ($name)" >&2; exit 1; }
}

# fd_limits: the open-file limits that bound how many connections one run can hold.
fd_limits() {
  local pid
  echo "    open-file limit: this shell $(ulimit -n) (hard $(ulimit -Hn)); the load generator raises its own to the hard limit"
  for pid in "${node_pids[@]}"; do
    [ -r "/proc/$pid/limits" ] && echo "    node $pid: $(grep 'Max open files' "/proc/$pid/limits" | tr -s ' ')"
  done
}

pid_args() {
  local pid
  for pid in "${node_pids[@]}"; do printf -- '--server-pid %s ' "$pid"; done
  [ -z "$redis_pid" ] || printf -- '--redis-pid %s' "$redis_pid"
}

# lg NAME ARGS...: one load-generator run; the command line is printed, the JSON saved.
lg() {
  local name=$1; shift
  echo "load before $name: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
  local cmd=("$loadgen_bin" "${urls[@]}" $(pid_args) --json --label "$name" "$@" "${extra[@]}")
  echo "+ ${cmd[*]}"
  "${cmd[@]}" >"$results/$name.json" || echo "loadgen exited $? ($name)" >&2
}

# rerun SCENARIO VAR...: the invocation of this script that reproduces SCENARIO's figures,
# with those of the VARs (and of the target's) that are set.
rerun() {
  local scenario=$1 v line=""
  shift
  for v in TARGET_URLS TARGET_PIDS TARGET_REDIS_PID TARGET_REDIS_URL TARGET_NODES LOADGEN_ARGS "$@"; do
    [ -z "${!v:-}" ] || line+="$v=$(printf %q "${!v}") "
  done
  echo "reproduce: ${line}benches/run.sh --scenarios $scenario"
}

echo "==> building (release)"
if [ "$external" = 1 ]; then
  cargo build --profile "$profile" --quiet -p loadgen --bins
else
  # Apart, as scripts/run-nodes builds the server: built together, their dependencies' features
  # are unified into another build of the server, and run-nodes (CI's check-nodes) built it again.
  cargo build --profile "$profile" --quiet -p privmsg --bin privmsg-server
  cargo build --profile "$profile" --quiet -p loadgen --bins
fi

if [ "$mode" = smoke ]; then
  start_stack 2
  # The released binary refuses transparent huge pages for its process (src/memory.rs): the
  # kernel reports it per process, where it reports it (Linux 5.0 and later).
  for pid in "${node_pids[@]}"; do
    thp=$(awk '/^THP_enabled:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$thp" ] && [ "$thp" != 0 ]; then
      echo "node $pid: THP_enabled is $thp in /proc/$pid/status, expected 0" >&2
      exit 1
    fi
  done
  "$loadgen_bin" "${urls[@]}" --smoke "${extra[@]}"
  exit $?
fi

mkdir -p "$results"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "nproc: $(nproc)"
  lscpu | grep -E 'Model name|^CPU\(s\)|Thread|MHz' || true
  grep MemTotal /proc/meminfo
  uname -sr
  echo "ulimit -n: $(ulimit -n) (hard $(ulimit -Hn))"
  if [ "$external" = 1 ]; then
    echo "target: external servers $TARGET_URLS (pids ${TARGET_PIDS:-?}, redis pid ${TARGET_REDIS_PID:-?})"
  else
    echo "server commit: $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo ' + uncommitted changes')"
  fi
} | tee "$results/machine.txt"

users=${USERS:-200}
rates=${RATES:-"2000 5000 10000 20000 40000 60000"}
duration=${DURATION:-10}
[ "$mode" = quick ] && rates=${RATES:-"2000 10000"} && duration=${DURATION:-5}

if [ -z "$scenarios" ] && [ "$mode" = quick ]; then
  scenarios="messages sessions big"
elif [ -z "$scenarios" ]; then
  scenarios="messages sessions big hold nodes knee"
fi
want() { [[ " $scenarios " == *" $1 "* ]]; }

want messages && echo "==> private messages: $users users on 2 nodes, random pairs"
want messages && for rate in $rates; do
  start_stack 2
  perf_job=
  if [ "${PERF:-0}" = 1 ] && [ "$rate" = "$(echo "$rates" | awk '{print $NF}')" ] && command -v perf >/dev/null; then
    (sleep 4; perf record -e cpu-clock -F 499 -g -o "$work/perf.data" -p "${node_pids[0]}" -- sleep 5 \
      >/dev/null 2>&1; perf report -i "$work/perf.data" --no-children --sort dso,symbol -g none \
      --stdio 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-150 | head -40 >"$results/perf-node1.txt" || true) &
    perf_job=$!
  fi
  lg "message-$rate" --users "$users" --batch 50 --phase message --phase restore --restore-sample 10 \
    --rate "$rate" --duration "$duration" --grace 10
  [ -z "$perf_job" ] || wait "$perf_job"
  stop_stack
done

want sessions && echo "==> connect -> users: 100 users joining 10 at a time, with stored sessions"
want sessions && for sessions in 0 1000 10000; do
  if [ "$external" = 1 ] && [ "$sessions" != 0 ] && [ -z "${TARGET_REDIS_URL:-}" ]; then
    echo "    (skipped $sessions stored sessions: set TARGET_REDIS_URL to seed the target's Redis)"
    continue
  fi
  # Seeded before the nodes start: a node that keeps a directory in memory loads them at start.
  start_redis
  [ "$sessions" = 0 ] || seed "seed-sessions-$sessions" "$sessions"
  start_nodes 2
  lg "connect-sessions-$sessions" --users 100 --batch 10
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

if want nodes; then
  node_counts=${NODE_COUNTS:-"2 4"}
  if [ "$external" = 1 ]; then
    node_counts=${TARGET_NODES:?"TARGET_NODES: how many server processes the target runs, e.g. 2"}
  fi
  nodes_rate=${NODES_RATE:-3000} nodes_duration=${NODES_DURATION:-15}
  echo "==> CPU per message vs node count: $users users over N nodes, $nodes_rate msg/s for $nodes_duration s"
  for n in $node_counts; do
    start_stack "$n"
    lg "nodes-$n" --users "$users" --batch 50 --phase message --rate "$nodes_rate" \
      --duration "$nodes_duration" --grace 10
    stop_stack
  done
  echo "==> nodes: figures"
  python3 benches/summary.py nodes "$results"
  rerun nodes USERS NODE_COUNTS NODES_RATE NODES_DURATION
fi

if want knee; then
  knee_rates=${KNEE_RATES:-"5000 10000 15000 20000 25000 30000"}
  knee_p99=${KNEE_P99_MS:-50}
  echo "==> knee: highest rate with p99 <= $knee_p99 ms and every message delivered ($users users, 2 nodes)"
  for rate in $knee_rates; do
    start_stack 2
    lg "knee-$rate" --users "$users" --batch 50 --phase message --rate "$rate" \
      --duration "${KNEE_DURATION:-10}" --grace 10
    stop_stack
    # Past the knee, higher rates only queue more: the sweep stops at the first miss.
    python3 benches/summary.py knee-ok "$results/knee-$rate.json" "$knee_p99" || break
  done
  echo "==> knee: figures"
  python3 benches/summary.py knee "$results" "$knee_p99"
  rerun knee USERS KNEE_RATES KNEE_DURATION KNEE_P99_MS
fi

# The server API: messages per second one node takes through POST /api/messages (200 users
# connected to it by socket, each message from a random user to another, the HTTP answer as
# the ack), swept until p99 passes the bound or a message is lost.
if want api; then
  api_p99=${KNEE_P99_MS:-50}
  echo "==> api: POST /api/messages on one node, $users users, p99 <= $api_p99 ms"
  for rate in ${API_RATES:-1000 2000 4000 8000 12000}; do
    start_stack 1
    lg "api-$rate" --users "$users" --batch 50 --phase message --rate "$rate" \
      --duration "${API_DURATION:-10}" --grace 10 --api-key "$bench_api_key"
    stop_stack
    python3 benches/summary.py knee-ok "$results/api-$rate.json" "$api_p99" || break
  done
  echo "==> api: figures"
  python3 benches/summary.py api "$results" "$api_p99"
  rerun api USERS API_RATES API_DURATION KNEE_P99_MS
fi

# A backend's emitter beside the nodes scenario (2 nodes): the run without it, then with
# `benches/emitter-load.mjs` emitting to random users, interleaved (without, with, with,
# without), so that the machine's drift does not read as the emitter's cost.
if want emitter; then
  nodes_rate=${NODES_RATE:-3000} nodes_duration=${NODES_DURATION:-15}
  emitter_rate=${EMITTER_RATE:-1000}
  [ -d tests/e2e/node_modules/@socket.io/redis-emitter ] || (cd tests/e2e && npm ci --silent)
  echo "==> emitter: 2 nodes, $users users, $nodes_rate msg/s, with and without $emitter_rate emits/s beside"
  for run in without-1 with-1 with-2 without-2; do
    start_stack 2
    emitter_pid=
    if [[ $run == with-* ]]; then
      REDIS_URL=$REDIS_URL USERS=$users RATE=$emitter_rate SECS=$((nodes_duration + 20)) \
        node benches/emitter-load.mjs >"$results/load-emitter-$run.json" &
      emitter_pid=$!
    fi
    lg "emitter-$run" --users "$users" --batch 50 --phase message --rate "$nodes_rate" \
      --duration "$nodes_duration" --grace 10
    [ -z "$emitter_pid" ] || { kill "$emitter_pid" 2>/dev/null || true; wait "$emitter_pid" 2>/dev/null || true; }
    stop_stack
  done
  echo "==> emitter: figures"
  python3 benches/summary.py emitter "$results" "$emitter_rate"
  rerun emitter USERS NODES_RATE NODES_DURATION EMITTER_RATE
fi

# Webhooks: the nodes scenario with every message also sent as a `message.created` webhook to a
# local receiver, against webhooks off (off, on, on, off).
if want webhooks; then
  nodes_rate=${NODES_RATE:-3000} nodes_duration=${NODES_DURATION:-15}
  echo "==> webhooks: 2 nodes, $users users, $nodes_rate msg/s, with and without message.created"
  for run in off-1 on-1 on-2 off-2; do
    receiver_pid= node_env=()
    if [[ $run == on-* ]]; then
      rport=$(free_port)
      node benches/webhook-receiver.mjs "$rport" >"$results/receiver-webhooks-$run.json" &
      receiver_pid=$!
      node_env=(WEBHOOK_URL="http://127.0.0.1:$rport/hook" WEBHOOK_EVENTS=message.created
        WEBHOOK_SECRET="$bench_api_key")
    fi
    start_stack 2
    lg "webhooks-$run" --users "$users" --batch 50 --phase message --rate "$nodes_rate" \
      --duration "$nodes_duration" --grace 10
    stop_stack
    [ -z "$receiver_pid" ] || { kill "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true; }
    node_env=()
  done
  echo "==> webhooks: figures"
  python3 benches/summary.py webhooks "$results"
  rerun webhooks USERS NODES_RATE NODES_DURATION
fi

# REDIS_WAIT_REPLICAS: the nodes scenario on a master + replica, each batch's acks waiting for
# the replica (on) against not (off), interleaved (off, on, on, off).
if want wait; then
  nodes_rate=${NODES_RATE:-3000} nodes_duration=${NODES_DURATION:-15}
  echo "==> wait: 2 nodes on a master + replica, $users users, $nodes_rate msg/s, REDIS_WAIT_REPLICAS=1 and 0"
  saved_replica=${REDIS_REPLICA:-0}
  REDIS_REPLICA=1
  for run in off-1 on-1 on-2 off-2; do
    node_env=()
    if [[ $run == on-* ]]; then node_env=(REDIS_WAIT_REPLICAS=1); fi
    start_stack 2
    lg "wait-$run" --users "$users" --batch 50 --phase message --rate "$nodes_rate" \
      --duration "$nodes_duration" --grace 10
    stop_stack
    node_env=()
  done
  REDIS_REPLICA=$saved_replica
  echo "==> wait: figures"
  python3 benches/summary.py wait "$results"
  rerun wait USERS NODES_RATE NODES_DURATION
fi

# Blocks (issue 34): the nodes scenario with block lists stored, against none (none, some,
# some, none). The lists belong to users outside the run: every message still reads its
# recipient's (empty) list in its own script, as it does with or without blocks anywhere.
if want blocks; then
  nodes_rate=${NODES_RATE:-3000} nodes_duration=${NODES_DURATION:-15} blocks=${BLOCKS:-10000}
  echo "==> blocks: 2 nodes, $users users, $nodes_rate msg/s, with $blocks block entries and without"
  for run in none-1 some-1 some-2 none-2; do
    start_stack 2
    if [[ $run == some-* ]]; then
      python3 - "$blocks" <<'PY' | redis-cli -u "$REDIS_URL" >/dev/null
import sys
n = int(sys.argv[1])
for blocker in range((n + 9) // 10):
    members = " ".join(f"bench-blocked-{blocker}-{j}" for j in range(min(10, n - blocker * 10)))
    print(f"SADD privmsg:blocks:{{messages:bench-blocker-{blocker}}} {members}")
PY
      echo "$run: $(redis-cli -u "$REDIS_URL" --scan --pattern 'privmsg:blocks:*' | wc -l) block lists" >>"$results/machine.txt"
    fi
    lg "blocks-$run" --users "$users" --batch 50 --phase message --rate "$nodes_rate" \
      --duration "$nodes_duration" --grace 10
    stop_stack
  done
  echo "==> blocks: figures"
  python3 benches/summary.py blocks "$results"
  rerun blocks USERS NODES_RATE NODES_DURATION BLOCKS
fi

# Issue 11: memory per idle connection and connect latency in the default scope.
if want directory; then
  if [ "$external" = 1 ] && [ -z "${TARGET_REDIS_URL:-}" ]; then
    echo "directory: needs TARGET_REDIS_URL with TARGET_URLS (sessions are seeded there)" >&2
    exit 2
  fi
  echo "==> directory: RSS per idle connection, 2 nodes, users joining in batches of 100"
  for scope in ${DIR_RSS_SCOPES:-all contacts}; do
    for n in ${DIR_RSS_USERS:-1000 2000 5000}; do
      start_stack 2 "$scope"
      if [ "$scope" = all ]; then
        lg "directory-rss-$n" --users "$n" --batch 100 --connect-timeout 60 --phase hold --hold 10
      else
        # Each user with a few contacts (one message per pair), so that `users` is small but
        # not empty, as a contacts-scope deployment's would be.
        lg "directory-contacts-rss-$n" --users "$n" --batch 100 --connect-timeout 60 \
          --contacts "${HOLD_CONTACTS:-4}" --phase hold --hold 10
      fi
      stop_stack
    done
  done
  echo "==> directory: connect -> users, 100 users joining 10 at a time, 2 nodes, with stored sessions"
  for sessions in ${DIR_SESSIONS:-0 1000 10000 100000}; do
    start_redis
    [ "$sessions" = 0 ] || seed "directory-seed-$sessions" "$sessions"
    start_nodes 2 all
    lg "directory-connect-$sessions" --users 100 --batch 10 --connect-timeout 60
    stop_stack
  done
  echo "==> directory: figures"
  python3 benches/summary.py directory "$results"
  rerun directory DIR_RSS_USERS DIR_SESSIONS DIR_RSS_SCOPES HOLD_CONTACTS
fi

# Issue 15: a million stored users in USERS_SCOPE=contacts. One Redis, seeded once; fresh nodes
# for each measurement.
if want contacts; then
  if [ "$external" = 1 ] && [ -z "${TARGET_REDIS_URL:-}" ]; then
    echo "contacts: needs TARGET_REDIS_URL with TARGET_URLS (sessions are seeded there)" >&2
    exit 2
  fi
  contacts_sessions=${CONTACTS_SESSIONS:-1000000}
  hold_users=${CONTACTS_HOLD_USERS:-19000}
  echo "==> contacts: seeding $contacts_sessions sessions with the contacts-scope index"
  start_redis
  seed contacts-seed "$contacts_sessions" --seed-index --seed-contacts "${SEED_CONTACTS:-0}"
  connect_users=${CONTACTS_CONNECT_USERS:-100}
  echo "==> contacts: connect -> users for users with ${CONTACTS_PER_USER:-50} contacts ($connect_users joining 10 at a time, 2 nodes)"
  start_nodes 2 contacts
  # The first join makes the users; --contacts gives them their contacts (one message per
  # pair); rejoin is the measurement: every user reconnects, by sessionID, 10 at a time.
  lg contacts-connect --users "$connect_users" --batch 10 --contacts "${CONTACTS_PER_USER:-50}" --phase rejoin
  stop_nodes
  echo "==> contacts: search users over $contacts_sessions usernames (1 node)"
  start_nodes 1 contacts
  lg contacts-search --users 10 --batch 10 --phase search --search-rate "${SEARCH_RATE:-200}" \
    --search-duration "${SEARCH_DURATION:-20}"
  stop_nodes
  echo "==> contacts: one node holding $hold_users users joined within ${CONTACTS_HOLD_BUDGET:-60} s"
  start_nodes 1 contacts
  fd_limits | tee -a "$results/machine.txt"
  lg "contacts-hold-$hold_users" --users "$hold_users" --batch 200 --connect-timeout 60 \
    --connect-budget "${CONTACTS_HOLD_BUDGET:-60}" --contacts "${HOLD_CONTACTS:-4}" --phase hold --hold 10
  stop_stack
  echo "==> contacts: figures"
  python3 benches/summary.py contacts "$results"
  rerun contacts CONTACTS_SESSIONS SEED_CONTACTS CONTACTS_PER_USER SEARCH_RATE SEARCH_DURATION \
    CONTACTS_HOLD_USERS CONTACTS_HOLD_BUDGET HOLD_CONTACTS CONTACTS_CONNECT_USERS
fi

# Issue 12: the soak, outside CI (benches/soak.sh).
want soak && source benches/soak.sh

if [ -n "$(find "$results" -maxdepth 1 \( -name 'message-*.json' -o -name 'connect-sessions-*.json' \
  -o -name 'nodes-*.json' \) -print -quit)" ]; then
  echo "==> plots"
  if python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib; then
    python3 benches/plot.py "$results"
  else
    echo "    (no matplotlib: plots skipped)"
  fi
fi
echo "==> results in $results/"
