"""The figures of a benches/run.sh scenario, printed from its load-generator JSON reports, with
the command lines that produced them and the Node.js reference (benches/node-reference.json).

    python3 benches/summary.py nodes DIR          # CPU per 1,000 delivered vs node count
    python3 benches/summary.py knee DIR [P99_MS]  # the rate sweep and its knee
    python3 benches/summary.py knee-ok FILE [P99_MS]  # exit 0 if that run is within the knee
"""

import glob
import json
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def reference():
    with open(os.path.join(HERE, "node-reference.json")) as f:
        return json.load(f)


def load(path):
    """The report, or None when the load generator failed before writing one."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs(results, prefix):
    """{suffix: report} for DIR/<prefix>-<suffix>.json, numeric suffixes in order."""
    found = {}
    for path in glob.glob(os.path.join(results, f"{prefix}-*.json")):
        suffix = os.path.basename(path)[len(prefix) + 1 : -len(".json")]
        found[suffix] = load(path)
    key = lambda s: (0, float(s)) if s.replace(".", "", 1).isdigit() else (1, s)
    return {s: found[s] for s in sorted(found, key=key)}


def fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def span(pair):
    low, high = pair
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def commands(found):
    print("load-generator commands (ports and pids as run):")
    for name, report in found.items():
        if report and report["args"].get("command"):
            print(f"  {shlex.join(report['args']['command'])}")
        else:
            print(f"  {name}: no report (the load generator failed; see its output above)")


def warnings(found):
    for name, report in found.items():
        for w in (report or {}).get("warnings", []):
            print(f"  WARNING ({name}): {w}")


def nodes(results):
    found = runs(results, "nodes")
    print("nodes  offered/s  delivered/s  server core-ms/1k  redis core-ms/1k  p99 ms  lost  acks")
    msg = {}
    for n, report in found.items():
        m = (report or {}).get("phases", {}).get("message")
        if m is None:
            print(f"{n:>5}  (no report)")
            continue
        msg[n] = m
        print(
            f"{n:>5}  {m['rate']:>9.0f}  {m['delivered_per_sec']:>11.0f}  "
            f"{fmt(m.get('server_cpu_ms_per_1000_delivered')):>17}  "
            f"{fmt(m.get('redis_cpu_ms_per_1000_delivered')):>16}  "
            f"{m['latency']['p99_ms']:>6.1f}  {m['lost']:>4}  {'no' if m.get('no_acks') else 'yes'}"
        )
    if "2" in msg and "4" in msg:
        def ratio(key, sub=None):
            a, b = msg["4"].get(key), msg["2"].get(key)
            if sub:
                a, b = a[sub], b[sub]
            return "-" if not a or not b else f"{a / b:.2f}x"

        print(
            f"4 nodes / 2 nodes: server CPU per message {ratio('server_cpu_ms_per_1000_delivered')}, "
            f"Redis {ratio('redis_cpu_ms_per_1000_delivered')}, p99 {ratio('latency', 'p99_ms')}"
        )
    ref = reference()
    cpu = ref["cpu_per_1000_delivered"]
    print(
        f"Node.js reference ({ref['date']}, {cpu['users']} users, {cpu['rate']}/s): server "
        + ", ".join(f"{span(v)} with {k}" for k, v in cpu["server_core_ms"].items())
        + f" workers; Redis {span(cpu['redis_core_ms']['2'])} (core-ms per 1,000 delivered)"
    )
    warnings(found)
    commands(found)


def knee_ok(m, p99_max):
    """Within the knee: p99 at most p99_max and every message sent was delivered."""
    return (
        m is not None
        and m["sent"] > 0
        and m["lost"] == 0
        and m["delivered"] >= m["sent"]
        and m["latency"]["p99_ms"] <= p99_max
    )


def knee(results, p99_max):
    found = runs(results, "knee")
    print("offered/s  delivered/s  p99 ms  lost  refused  unacked  within")
    best, missed = None, False
    for rate, report in found.items():
        m = (report or {}).get("phases", {}).get("message")
        if m is None:
            print(f"{rate:>9}  (no report)")
            continue
        ok = knee_ok(m, p99_max)
        if ok:
            best = max(best or 0, m["rate"])
        missed = missed or not ok
        print(
            f"{m['rate']:>9.0f}  {m['delivered_per_sec']:>11.0f}  {m['latency']['p99_ms']:>6.1f}  "
            f"{m['lost']:>4}  {sum(m['error_acks'].values()):>7}  {m['unacked']:>7}  "
            f"{'yes' if ok else 'no'}"
        )
    if best is None:
        print(f"knee: no rate had p99 <= {p99_max:g} ms with every message delivered")
    else:
        print(f"knee: {best:.0f} msg/s (highest rate with p99 <= {p99_max:g} ms, every message delivered)"
              + ("" if missed else "; every rate swept was within: the knee is at or above it"))
    ref = reference()
    print(f"Node.js reference ({ref['date']}): knee {ref['knee']['rate']} msg/s")
    warnings(found)
    commands(found)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("nodes", "knee", "knee-ok"):
        print(__doc__, file=sys.stderr)
        return 2
    what, target = argv[1], argv[2]
    p99_max = float(argv[3]) if len(argv) > 3 else 50.0
    if what == "nodes":
        nodes(target)
    elif what == "knee":
        knee(target, p99_max)
    else:
        report = load(target)
        return 0 if knee_ok((report or {}).get("phases", {}).get("message"), p99_max) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
