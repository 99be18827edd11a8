"""The soak's memory over time (benches/soak.sh): RSS of each node and Redis's used_memory,
from soak.csv, with the node restarts marked. Usage: python3 benches/plot_soak.py DIR"""

import csv
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def main(results):
    with open(os.path.join(results, "soak.csv")) as f:
        rows = list(csv.DictReader(f))
    t = [int(r["elapsed_s"]) / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    for column, label in (("node1_rss_kib", "node 1 RSS"), ("node2_rss_kib", "node 2 RSS")):
        ax.plot(t, [int(r[column] or 0) / 1024 for r in rows], label=label)
    ax.plot(t, [int(r["redis_used_memory"] or 0) / 2**20 for r in rows], label="Redis used_memory")
    events = os.path.join(results, "soak-events.txt")
    if os.path.exists(events):
        with open(events) as f:
            for line in f:
                m = re.match(r"\s*(\d+) s: node", line)
                if m:
                    ax.axvline(int(m.group(1)) / 60, color="gray", alpha=0.3)
    ax.set_xlabel("minutes (gray: a node restarted)")
    ax.set_ylabel("MiB")
    ax.set_title("soak: memory over time")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(results, "soak.png"), dpi=110)
    print(f"plot in {results}/soak.png")


if __name__ == "__main__":
    main(sys.argv[1])
