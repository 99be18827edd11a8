#!/usr/bin/env bash
# Redis CPU per message of the message store, alone: replays the batches a nodes run sent
# (captured with MONITOR) into a fresh redis-server, through each given version of
# store_messages.lua and through the same writes without Lua, ROUNDS times interleaved, and
# prints Redis's CPU per message for each (INFO cpu, before and after; INFO commandstats for
# the script's own time). The machine's noise is ±20 % between rounds: compare within a run.
#
#   MONITOR_FILE=/tmp/store.monitor NODE_COUNTS=2 NODES_DURATION=10 benches/run.sh --scenarios nodes
#   benches/script-replay.sh /tmp/store.monitor [SCRIPT.lua ...]   # default: redis-scripts/store_messages.lua
#
# The capture and the scripts must share an argument layout (that of the build that ran).
set -euo pipefail
cd "$(dirname "$0")/.."

capture=${1:?"usage: benches/script-replay.sh MONITOR_FILE [SCRIPT.lua ...]"}
shift
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(redis-scripts/store_messages.lua)
rounds=${ROUNDS:-3}

source scripts/lib.sh
need_packages redis-server:redis-server redis-cli:redis-tools

work=$(mktemp -d -t privmsg-replay.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

cli() { redis-cli -p "$port" "$@"; }
cpu() { cli info cpu | awk -F: '/used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f", s }'; }

# Protocol files, built once: one per script, and the plain one.
declare -A files
for script in "${scripts[@]}"; do
  sha=$(cli script load "$(cat "$script")")
  files[$script]="$work/$(basename "$script").$sha.resp"
  count=$(python3 benches/script_replay.py lua "$capture" "$sha" "${files[$script]}")
done
files[plain]="$work/plain.resp"
python3 benches/script_replay.py plain "$capture" "${files[plain]}" >/dev/null
echo "==> $count messages in $(basename "$capture"), $rounds rounds; Redis CPU per message (µs)"

for round in $(seq "$rounds"); do
  for name in "${scripts[@]}" plain; do
    cli flushall >/dev/null
    cli config resetstat >/dev/null
    before=$(cpu)
    piped=$(cli --pipe <"${files[$name]}" 2>&1) || true
    after=$(cpu)
    # A replay whose calls Redis refused (a capture of another argument layout, a broken
    # variant) would measure error replies, not the script.
    if ! grep -q 'errors: 0,' <<<"$piped"; then
      echo "$name: Redis refused some of the replayed calls:" >&2
      tail -3 <<<"$piped" >&2
      exit 1
    fi
    script_us=$(cli info commandstats | sed -nE 's/^cmdstat_evalsha:calls=[0-9]+,usec=([0-9]+),.*/\1/p')
    python3 -c "
import sys
total, script = (float(sys.argv[2]) - float(sys.argv[1])) * 1e6, sys.argv[3]
line = 'round $round  %-45s  %6.2f' % ('$name', total / $count)
if script: line += '   (inside the script: %.2f)' % (int(script) / $count)
print(line)" "$before" "$after" "${script_us:-}" | tee -a "$work/rounds"
  done
done
echo "==> median of the rounds"
python3 - "$work/rounds" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    fields = line.split()
    runs.setdefault(fields[2], []).append(float(fields[3]))
for name, values in runs.items():
    print('%-45s  %6.2f µs per message' % (name, statistics.median(values)))
PY
echo "reproduce: benches/script-replay.sh $capture ${scripts[*]}"
