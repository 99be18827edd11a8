# The soak (issue 12), sourced by benches/run.sh (`--scenarios soak`), never run by CI.
#
# SOAK_SECS (1800) of churn on 2 nodes and 1 Redis: rounds of SOAK_USERS (100) users joining,
# sending (SOAK_RATE msg/s for SOAK_ROUND_SECS), closing their tabs and reloading (every user
# reconnects by sessionID and its whole history is checked for every message acknowledged to
# it), then leaving; one node is restarted (SIGTERM, started again on its port) every
# SOAK_RESTART_SECS (180), in the middle of a round, its users' sockets dropped with it.
# Every 10 s the RSS of each node and Redis's used_memory go to soak.csv (plotted as
# soak.png). At the end, once every client has left: presence fields left in sessions
# (orphans) and sessions still marked connected, both of which must be 0, and the
# acknowledged messages missing from a history, from every round's restore check.

soak_secs=${SOAK_SECS:-1800}
soak_users=${SOAK_USERS:-100}
soak_rate=${SOAK_RATE:-300}
soak_round=${SOAK_ROUND_SECS:-40}
soak_restart=${SOAK_RESTART_SECS:-180}
echo "==> soak: $soak_secs s of churn, $soak_users users per round, a node restarted every $soak_restart s"
start_stack 2
soak_ports=("${urls[1]##*:}" "${urls[3]##*:}")

# soak_pid I: the pid of the node listening on node I's port (restarts change it, and they
# run in subshells).
soak_pid() {
  ss -Hltnp "sport = :${soak_ports[$1]}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

# soak_sample: one line of soak.csv (elapsed s, RSS KiB of node 1 and 2, Redis used_memory);
# 0 for a node that is restarting.
soak_sample() {
  local rss=() i pid
  for i in 0 1; do
    pid=$(soak_pid "$i")
    rss+=("$( [ -n "$pid" ] && awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)")
  done
  local used
  used=$(redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
  echo "$(( $(date +%s) - soak_start )),${rss[0]},${rss[1]},$used" >>"$results/soak.csv"
}

# soak_restart I: node I stopped with SIGTERM (it drains) and started again on its port.
soak_restart_node() {
  local i=$1
  kill -TERM "${node_pids[$i]}" 2>/dev/null || true
  wait "${node_pids[$i]}" 2>/dev/null || true
  launch_node "$((i + 1))" "${soak_ports[$i]}" all
  node_pids[i]=$launched
  echo "    $(( $(date +%s) - soak_start )) s: node $((i + 1)) restarted" | tee -a "$results/soak-events.txt"
}

echo "elapsed_s,node1_rss_kib,node2_rss_kib,redis_used_memory" >"$results/soak.csv"
soak_start=$(date +%s)
( while sleep 10; do soak_sample; done ) &
sampler=$!
round=0 next_restart=$soak_restart restarted=0
while [ $(( $(date +%s) - soak_start )) -lt "$soak_secs" ]; do
  round=$((round + 1))
  # A restart in the middle of this round's messages, when one is due.
  restart_pid=
  if [ $(( $(date +%s) - soak_start + soak_round / 2 )) -ge "$next_restart" ]; then
    ( sleep $((soak_round / 2)); soak_restart_node $((restarted % 2)) ) &
    restart_pid=$!
    restarted=$((restarted + 1)) next_restart=$((next_restart + soak_restart))
  fi
  "$loadgen_bin" "${urls[@]}" --json --label "soak-$round" --users "$soak_users" --batch 20 \
    --phase message --rate "$soak_rate" --duration "$soak_round" --grace 5 \
    --phase restore --restore-sample "$soak_users" >"$results/soak-$round.json" 2>>"$work/soak.log" \
    || echo "    round $round: loadgen exited $?" | tee -a "$results/soak-events.txt"
  if [ -n "$restart_pid" ]; then
    wait "$restart_pid"
    # The restart ran in a subshell: read the new pid from the port's listener.
    i=$(( (restarted - 1) % 2 ))
    node_pids[i]=$(soak_pid "$i")
  fi
done
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
soak_sample

# Every client has left: count what presence left behind (polled for up to 30 s: the last
# departures are saved in flight).
orphans= online=
for _ in $(seq 60); do
  orphans=0 online=0
  while read -r key; do
    [ -z "$key" ] && continue
    n=$(redis-cli -u "$REDIS_URL" hkeys "$key" | grep -c '^socket:' || true)
    orphans=$((orphans + n))
    [ "$(redis-cli -u "$REDIS_URL" hget "$key" connected)" = true ] && online=$((online + 1))
  done < <(redis-cli -u "$REDIS_URL" --scan --pattern 'session:*')
  [ "$orphans" = 0 ] && [ "$online" = 0 ] && break
  sleep 0.5
done
stop_stack
{
  echo "rounds: $round, node restarts: $restarted, duration: $(( $(date +%s) - soak_start )) s"
  echo "orphan presence fields after every client left: $orphans"
  echo "sessions still connected after every client left: $online"
} | tee "$results/soak-summary.txt"
python3 benches/summary.py soak "$results" | tee -a "$results/soak-summary.txt"
if python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib; then
  python3 benches/plot_soak.py "$results"
fi
rerun soak SOAK_SECS SOAK_USERS SOAK_RATE SOAK_ROUND_SECS SOAK_RESTART_SECS
