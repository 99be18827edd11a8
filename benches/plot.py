"""Plots of benches/run.sh results: latency percentiles vs offered rate, connect latency vs
stored sessions, and CPU per message vs node count, each next to the Node.js reference figures
of benches/node-reference.json. Usage: python3 benches/plot.py DIR (default benches/results)"""

import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def plain_ticks(ax):
    """Log axes with plain numbers and no minor labels (readable at a glance)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def node_reference():
    with open(os.path.join(HERE, "node-reference.json")) as f:
        return json.load(f)


def ranges(pairs):
    """[[min, max], ...] -> (middles, error bars below and above) for errorbar()."""
    mid = [(lo + hi) / 2 for lo, hi in pairs]
    return mid, [[m - lo for m, (lo, _) in zip(mid, pairs)], [hi - m for m, (_, hi) in zip(mid, pairs)]]


def load(pattern):
    runs = []
    for path in glob.glob(pattern):
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except ValueError:
            pass  # the load generator failed before writing its report
    return runs


def sweep(results, ref):
    runs = [r for r in load(os.path.join(results, "message-*.json")) if "message" in r["phases"]]
    runs.sort(key=lambda r: r["args"]["rate"])
    if not runs:
        return
    rate = [r["args"]["rate"] for r in runs]
    msg = [r["phases"]["message"] for r in runs]
    knee, closed = ref["knee"], ref["closed_loop_max"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^-")):
        ax.plot(rate, [m["latency"][key] for m in msg], style, label=f"ours {key[:-3]}")
    ax.plot([knee["rate"]], [knee["p99_ms_max"]], "kv",
            label=f"Node.js knee: p99 ≤ {knee['p99_ms_max']} ms up to {knee['rate']}/s")
    ax.plot([closed["delivered_per_sec"]], [closed["p99_ms"]], "kx",
            label="Node.js closed-loop max (p99)")
    ax.set(xscale="log", yscale="log", xlabel="offered msg/s", ylabel="end-to-end latency (ms)",
           title="Private messages, 200 users, 2 nodes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    plain_ticks(ax)
    bx.plot(rate, [m["delivered_per_sec"] for m in msg], "o-", label="delivered/s")
    bx.plot(rate, rate, "k:", label="offered")
    bx.plot(rate, [sum(m["error_acks"].values()) / r["args"]["duration"] for r, m in zip(runs, msg)],
            "r^-", label="error acks/s")
    bx.axhline(closed["delivered_per_sec"], color="k", linestyle="--", linewidth=0.8,
               label="Node.js closed-loop max delivered/s")
    bx.set(xscale="log", yscale="log", xlabel="offered msg/s", ylabel="msg/s", title="Throughput")
    bx.grid(True, which="both", alpha=0.3)
    bx.legend(fontsize="small")
    plain_ticks(bx)
    fig.text(0.01, 0.01, f"Node.js: {ref['date']}, {ref['source']}", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(os.path.join(results, "messages.png"), dpi=110)


def stored_sessions(report):
    """Stored sessions of a connect run: seeded by the run itself (older runs) or just before
    it by a --seed-only run, as the label's suffix says (connect-sessions-K)."""
    label = report["args"].get("label") or ""
    suffix = label.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else report["args"]["seed_sessions"]


def connect(results, ref):
    runs = [r for r in load(os.path.join(results, "connect-sessions-*.json"))
            if "connect" in r.get("phases", {})]
    runs.sort(key=stored_sessions)
    if not runs:
        return
    sessions = [stored_sessions(r) for r in runs]
    lat = [r["phases"]["connect"]["latency"] for r in runs]
    node = ref["connect_users_p99_ms"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(sessions, [l["p50_ms"] for l in lat], "o-", label="ours p50")
    ax.plot(sessions, [l["p99_ms"] for l in lat], "^-", label="ours p99")
    mid, err = ranges(node["p99_ms"])
    ax.errorbar(node["sessions"], mid, yerr=err, fmt="k+--", capsize=4, label="Node.js p99 (range)")
    ax.set(xscale="symlog", yscale="log", xlabel="stored sessions", ylabel="connect -> users (ms)",
           title="100 users joining 10 at a time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    plain_ticks(ax)
    fig.text(0.01, 0.01, f"Node.js: {ref['date']}", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(os.path.join(results, "connect.png"), dpi=110)


def nodes(results, ref):
    runs = []
    for r in load(os.path.join(results, "nodes-*.json")):
        label = r["args"].get("label") or ""
        if "message" in r["phases"] and label.split("-")[-1].isdigit():
            runs.append((int(label.split("-")[-1]), r["phases"]["message"]))
    runs.sort(key=lambda x: x[0])
    if not runs:
        return
    cpu = ref["cpu_per_1000_delivered"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    n = [k for k, _ in runs]
    for key, style, what in (("server_cpu_ms_per_1000_delivered", "o-", "servers"),
                             ("redis_cpu_ms_per_1000_delivered", "s-", "Redis")):
        ax.plot(n, [m.get(key) for _, m in runs], style, label=f"ours, {what}")
    for key, style, what in (("server_core_ms", "k+--", "workers"), ("redis_core_ms", "kx:", "Redis")):
        counts = sorted(cpu[key], key=int)
        mid, err = ranges([cpu[key][c] for c in counts])
        ax.errorbar([int(c) for c in counts], mid, yerr=err, fmt=style, capsize=4,
                    label=f"Node.js, {what} ({cpu['users']} users, {cpu['rate']}/s)")
    first = runs[0][1]
    ax.set(xlabel="server nodes (Node.js: workers)", ylabel="core-ms per 1,000 delivered",
           title=f"CPU per message, {first['users']} users, {first['rate']:.0f} msg/s offered")
    ax.set_xticks(sorted(set(n) | {int(c) for c in cpu["server_core_ms"]}))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, f"Node.js: {ref['date']}", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(os.path.join(results, "nodes.png"), dpi=110)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "benches/results"
    ref = node_reference()
    sweep(out, ref)
    connect(out, ref)
    nodes(out, ref)
    written = [p for p in ("messages.png", "connect.png", "nodes.png")
               if os.path.exists(os.path.join(out, p))]
    print(f"plots in {out}/: {', '.join(written) or 'none'}")
