#!/usr/bin/env bash
# The floor under the RSS per idle connection (issue 11): the directory scenario's idle
# connections (users joining in batches of 100, then 10 s idle, 2 nodes) held by
#   floor    `stack-floor` (tools/floor: socketioxide with nothing of ours), as it comes;
#   floor+   the same with the server's two per-connection memory settings (SERVER_MEMORY=1:
#            1 KiB WebSocket read buffer, request head detached from hyper's read buffer);
#   server   the server in USERS_SCOPE=contacts (4 contacts each: a small `users`);
# ROUNDS times interleaved, so that the figures are read side by side within one invocation.
#
#   benches/memory-floor.sh
#   ROUNDS=3 DIR_RSS_USERS="1000 5000" benches/memory-floor.sh
#   SERVER_BIN=/tmp/other-build benches/memory-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-2}
sizes=${DIR_RSS_USERS:-1000 2000 5000}
server_bin=${SERVER_BIN:-target/release/privmsg-server}
cargo build --release --quiet -p privmsg -p stack-floor -p loadgen --bins
work=$(mktemp -d -t privmsg-memory-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run LABEL BIN SCOPE SERVER_MEMORY: one directory run over every size; prints its rows.
run() {
  local label=$1 bin=$2 scope=$3 memory=$4 dir="$work/$1-$round"
  SERVER_MEMORY=$memory SERVER_BIN=$bin DIR_RSS_SCOPES=$scope DIR_SESSIONS=" " \
    DIR_RSS_USERS="$sizes" RESULTS_DIR=$dir benches/run.sh --scenarios directory \
    >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
  python3 - "$dir" "$round" "$label" "$scope" $sizes <<'PY'
import json, sys
path, rnd, label, scope, *sizes = sys.argv[1:]
prefix = "directory-rss" if scope == "all" else "directory-contacts-rss"
for n in sizes:
    phases = json.load(open(f"{path}/{prefix}-{n}.json"))["phases"]
    c, h = phases["connect"], phases["hold"]
    print(f"{rnd:>5}  {label:<7} {n:>6}  {c['connected']:>6}  {c.get('join_secs', 0):>6.1f}"
          f"  {h['server_rss_per_conn_kib']:>13.1f}")
PY
}

echo "$rounds rounds, users: $sizes; server: $server_bin"
echo "round  build    users  joined  join s  KiB/connection"
for round in $(seq "$rounds"); do
  run floor target/release/stack-floor all 0
  run floor+ target/release/stack-floor all 1
  run server "$server_bin" contacts 0
done
echo "reproduce: ROUNDS=$rounds DIR_RSS_USERS=\"$sizes\" benches/memory-floor.sh"
