"""Plots of benches/run.sh results: latency percentiles vs offered rate, and connect latency vs
stored sessions. Usage: python3 benches/plot.py benches/results"""

import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402


def plain_ticks(ax):
    """Log axes with plain numbers and no minor labels (readable at a glance)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())

NODE_REF = {  # Node.js Part IV server, 2 workers (see BENCHMARKS.md)
    "rate": [6400, 9900],
    "p99": [38, 657],
    "sessions": [0, 1000, 10000],
    "connect_p50": [23, 79, 670],
    "connect_p99": [48, 133, 1050],
}


def load(pattern):
    runs = []
    for path in glob.glob(pattern):
        with open(path) as f:
            runs.append(json.load(f))
    return runs


def sweep(results):
    runs = [r for r in load(os.path.join(results, "message-*.json")) if "message" in r["phases"]]
    runs.sort(key=lambda r: r["args"]["rate"])
    if not runs:
        return
    rate = [r["args"]["rate"] for r in runs]
    msg = [r["phases"]["message"] for r in runs]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^-")):
        ax.plot(rate, [m["latency"][key] for m in msg], style, label=f"ours {key[:-3]}")
    ax.plot(NODE_REF["rate"], NODE_REF["p99"], "kx:", label="Node.js p99")
    ax.set(xscale="log", yscale="log", xlabel="offered msg/s", ylabel="end-to-end latency (ms)",
           title="Private messages, 200 users, 2 nodes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    plain_ticks(ax)
    bx.plot(rate, [m["delivered_per_sec"] for m in msg], "o-", label="delivered/s")
    bx.plot(rate, rate, "k:", label="offered")
    bx.plot(rate, [sum(m["error_acks"].values()) / r["args"]["duration"] for r, m in zip(runs, msg)],
            "r^-", label="error acks/s")
    bx.set(xscale="log", yscale="log", xlabel="offered msg/s", ylabel="msg/s", title="Throughput")
    bx.grid(True, which="both", alpha=0.3)
    bx.legend()
    plain_ticks(bx)
    fig.tight_layout()
    fig.savefig(os.path.join(results, "messages.png"), dpi=110)


def connect(results):
    runs = load(os.path.join(results, "connect-sessions-*.json"))
    runs.sort(key=lambda r: r["args"]["seed_sessions"])
    if not runs:
        return
    sessions = [r["args"]["seed_sessions"] for r in runs]
    lat = [r["phases"]["connect"]["latency"] for r in runs]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(sessions, [l["p50_ms"] for l in lat], "o-", label="ours p50")
    ax.plot(sessions, [l["p99_ms"] for l in lat], "^-", label="ours p99")
    ax.plot(NODE_REF["sessions"], NODE_REF["connect_p50"], "kx:", label="Node.js p50")
    ax.plot(NODE_REF["sessions"], NODE_REF["connect_p99"], "k+--", label="Node.js p99")
    ax.set(xscale="symlog", yscale="log", xlabel="stored sessions", ylabel="connect -> users (ms)",
           title="100 users joining 10 at a time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    plain_ticks(ax)
    fig.tight_layout()
    fig.savefig(os.path.join(results, "connect.png"), dpi=110)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "benches/results"
    sweep(out)
    connect(out)
    print(f"plots written to {out}/messages.png and {out}/connect.png")
