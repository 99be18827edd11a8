"""The figures of a benches/run.sh scenario, printed from its load-generator JSON reports, with
the command lines that produced them and the Node.js reference (benches/node-reference.json).

    python3 benches/summary.py nodes DIR          # CPU per 1,000 delivered vs node count
    python3 benches/summary.py knee DIR [P99_MS]  # the rate sweep and its knee
    python3 benches/summary.py api DIR [P99_MS]   # the same for POST /api/messages (one node)
    python3 benches/summary.py emitter DIR [EMITS_PER_SEC]  # nodes with and without an emitter
    python3 benches/summary.py webhooks DIR  # nodes with and without a webhook per message
    python3 benches/summary.py wait DIR      # nodes on master + replica, REDIS_WAIT_REPLICAS 1 vs 0
    python3 benches/summary.py knee-ok FILE [P99_MS]  # exit 0 if that run is within the knee
    python3 benches/summary.py directory DIR      # issue 11: RSS per idle connection, connect latency
    python3 benches/summary.py contacts DIR       # issue 15: a million users in USERS_SCOPE=contacts
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


def emitter(results, emit_rate):
    """The nodes scenario with and without a backend's emitter beside it."""
    found = runs(results, "emitter")
    print("run        server core-ms/1k msgs  redis core-ms/1k  p99 ms  lost  emits received")
    cost = {"with": [], "without": []}
    for name, report in found.items():
        m = (report or {}).get("phases", {}).get("message")
        if m is None:
            print(f"{name:<10} (no report)")
            continue
        server = m.get("server_cpu_ms_per_1000_delivered")
        print(f"{name:<10} {fmt(server):>23}  {fmt(m.get('redis_cpu_ms_per_1000_delivered')):>16}  "
              f"{m['latency']['p99_ms']:>6.1f}  {m['lost']:>4}  {m.get('other_events', '-'):>14}")
        if server is not None:
            # Server core-ms over the message phase, to set the emits against.
            cost[name.split("-")[0]].append((server * m["delivered"] / 1000, m["duration_secs"]))
    if cost["with"] and cost["without"]:
        mean = lambda pairs: sum(ms for ms, _ in pairs) / len(pairs)
        window = cost["with"][0][1]
        extra = mean(cost["with"]) - mean(cost["without"])
        print(f"with / without: server CPU {mean(cost['with']) / mean(cost['without']):.2f}x; "
              f"the emits cost ~{extra / (emit_rate * window) * 1000:.1f} core-ms per 1,000 "
              f"({emit_rate:g}/s over {window:g} s)")
    warnings(found)
    commands(found)


def interleaved(results, scenario, after, before, redis_label="Redis", extra=None):
    """The nodes scenario run two ways, interleaved (runs named `after-N` and `before-N`):
    each run's figures, then after / before per 1,000 delivered. `extra`: (heading, function
    of the run's name) for one more column."""
    found = runs(results, scenario)
    print("run     server core-ms/1k  redis core-ms/1k  p50 ms  p99 ms  lost"
          + (f"  {extra[0]}" if extra else ""))
    mean = {after: [], before: []}
    for name, report in found.items():
        m = (report or {}).get("phases", {}).get("message")
        if m is None:
            print(f"{name:<7} (no report)")
            continue
        server, redis = m.get("server_cpu_ms_per_1000_delivered"), m.get("redis_cpu_ms_per_1000_delivered")
        more = f"  {extra[1](name)}" if extra else ""
        print(f"{name:<7} {fmt(server):>17}  {fmt(redis):>16}  {m['latency']['p50_ms']:>6.1f}  "
              f"{m['latency']['p99_ms']:>6.1f}  {m['lost']:>4}{more}")
        if server is not None and redis is not None:
            mean.setdefault(name.split("-")[0], []).append((server, redis, m["latency"]["p99_ms"]))
    if mean[after] and mean[before]:
        avg = lambda rows, i: sum(r[i] for r in rows) / len(rows)
        print(f"{after} / {before}: servers {avg(mean[after], 0) / avg(mean[before], 0):.2f}x, "
              f"{redis_label} {avg(mean[after], 1) / avg(mean[before], 1):.2f}x per 1,000 delivered; "
              f"p99 {avg(mean[before], 2):.1f} -> {avg(mean[after], 2):.1f} ms")
    warnings(found)
    commands(found)


def wait(results):
    """The nodes scenario on a master + replica with REDIS_WAIT_REPLICAS=1 (on) and 0 (off)."""
    interleaved(results, "wait", "on", "off", redis_label="Redis (master)")


def webhooks(results):
    """The nodes scenario with every message also a `message.created` webhook, and without."""
    def received(name):
        got = load(os.path.join(results, f"receiver-webhooks-{name}.json")) or {}
        return f"{got['received']} ({got['perSec']:.0f}/s)" if got else "-"
    interleaved(results, "webhooks", "on", "off", extra=("webhooks received (/s)", received))


def blocks(results):
    """The nodes scenario with block lists stored (`some`) and without (`none`)."""
    interleaved(results, "blocks", "some", "none")


def knee_ok(m, p99_max):
    """Within the knee: p99 at most p99_max and every message sent was delivered."""
    return (
        m is not None
        and m["sent"] > 0
        and m["lost"] == 0
        and m["delivered"] >= m["sent"]
        and m["latency"]["p99_ms"] <= p99_max
    )


def knee(results, p99_max, prefix="knee"):
    found = runs(results, prefix)
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
    if prefix == "knee":
        ref = reference()
        print(f"Node.js reference ({ref['date']}): knee {ref['knee']['rate']} msg/s")
    warnings(found)
    commands(found)


def phase(report, name):
    return ((report or {}).get("phases") or {}).get(name)


def lat(section):
    if not section or not section["latency"]["count"]:
        return "-", "-"
    return f"{section['latency']['p50_ms']:.1f}", f"{section['latency']['p99_ms']:.1f}"


def users_size(section):
    """'entries p50/max, KB p50/max' of the `users` events a join phase received."""
    ev = (section or {}).get("users_event")
    if not ev or not ev["entries"]["count"]:
        return "-"
    e, b = ev["entries"], ev["bytes"]
    return f"{e['p50']}/{e['max']} entries, {b['p50'] / 1000:.1f}/{b['max'] / 1000:.1f} KB"


def seed_line(found):
    for name, report in found.items():
        s = phase(report, "seed")
        if s:
            print(f"  seeded {s['sessions']:,} sessions in {s['secs']:.1f} s ({s['sessions_per_sec']:,.0f}/s, "
                  f"{s['connections']} connections; index {'yes' if s['index'] else 'no'}, "
                  f"{s['contacts_per_user']} contacts each) [{name}]")


def rss_table(rss, scope):
    print(f"RSS per idle connection ({scope}, 2 nodes, batches of 100, then idle 10 s):")
    print("  users  joined  join s  connect p50/p99 ms  users event (p50/max)            RSS before->after MiB  KiB/conn")
    for n, report in rss.items():
        c, h = phase(report, "connect"), phase(report, "hold")
        if not c or not h:
            print(f"  {n:>5}  (no report)")
            continue
        p50, p99 = lat(c)
        print(f"  {n:>5}  {c['connected']:>6}  {c.get('join_secs', c['cpu']['wall_secs']):>6.1f}  "
              f"{p50:>8}/{p99:<9}  {users_size(c):<34} "
              f"{h['server_rss_before_kib'] / 1024:>7.1f}->{h['server_rss_after_kib'] / 1024:<8.1f}  "
              f"{h['server_rss_per_conn_kib']:>8.1f}")


def directory(results):
    rss = runs(results, "directory-rss")
    contacts_rss = runs(results, "directory-contacts-rss")
    rss_table(rss, "default scope")
    if contacts_rss:
        rss_table(contacts_rss, "USERS_SCOPE=contacts, 4 contacts each")
    if "5000" in rss and phase(rss["5000"], "connect"):
        c = phase(rss["5000"], "connect")
        print(f"time for 5,000 users to join in batches of 100: {c.get('join_secs', 0):.1f} s "
              f"({c['connected']} joined, {c['failed']} failed)")
    conn = runs(results, "directory-connect")
    print("connect -> users, 100 users joining 10 at a time, 2 nodes:")
    print("  stored sessions  p50 ms  p99 ms  users event (p50/max)              failed")
    for k, report in conn.items():
        c = phase(report, "connect")
        if not c:
            print(f"  {k:>15}  (no report)")
            continue
        p50, p99 = lat(c)
        print(f"  {int(k):>15,}  {p50:>6}  {p99:>6}  {users_size(c):<34} {c['failed']:>6}")
    seed_line(runs(results, "directory-seed"))
    found = {**{f"rss-{k}": v for k, v in rss.items()},
             **{f"contacts-rss-{k}": v for k, v in contacts_rss.items()},
             **{f"connect-{k}": v for k, v in conn.items()}}
    warnings(found)
    commands({**{f"seed-{k}": v for k, v in runs(results, "directory-seed").items()}, **found})


def contacts(results):
    found = {}
    for path in sorted(glob.glob(os.path.join(results, "contacts-*.json"))):
        found[os.path.basename(path)[: -len(".json")]] = load(path)
    seed_line(found)
    conn = found.get("contacts-connect")
    c, k, r = phase(conn, "connect"), phase(conn, "contacts"), phase(conn, "rejoin")
    if r:
        p50, p99 = lat(r)
        print(f"connect -> users, users with {k['per_user'] if k else '?'} contacts, {r['users']} rejoining 10 at a time, "
              f"2 nodes: p50 {p50} ms, p99 {p99} ms; users event {users_size(r)}; {r['failed']} failed")
        if c:
            p50, p99 = lat(c)
            print(f"  (their first join, with no contacts yet: p50 {p50} ms, p99 {p99} ms; {users_size(c)})")
    else:
        print("connect with contacts: no report")
    s = phase(found.get("contacts-search"), "search")
    if s:
        p50, p99 = lat(s)
        errs = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"
        print(f"search users over {s['sampled_usernames']} sampled of the stored usernames ({s['sample_source']}), "
              f"{s['rate']:.0f}/s for {s['duration_secs']:.0f} s, limit {s['limit']}: p50 {p50} ms, p99 {p99} ms; "
              f"{s['answered']}/{s['sent']} answered, results p50 {s['results']['p50']} max {s['results']['max']} "
              f"({s['empty_results']} empty); errors: {errs}")
    else:
        print("search users: no report")
    for name, report in found.items():
        if not name.startswith("contacts-hold-"):
            continue
        c, h, k = phase(report, "connect"), phase(report, "hold"), phase(report, "contacts")
        if not c or not h:
            print(f"{name}: no report")
            continue
        print(f"one node, contacts scope: {c['connected']:,}/{c['users']:,} joined in {c.get('join_secs', 0):.1f} s "
              f"(batches of {c['batch']}; connect p99 {lat(c)[1]} ms; {c['failed']} failed); "
              f"{k['per_user'] if k else 0} contacts each; held {h['open']:,} for {h['held_secs']} s, "
              f"{h['dropped']} dropped; RSS {h['server_rss_before_kib'] / 1024:.1f} -> "
              f"{h['server_rss_after_kib'] / 1024:.1f} MiB = {h['server_rss_per_conn_kib']:.1f} KiB per connection; "
              f"load generator open-file limit {h.get('fd_limit', '?')}")
        if c["connected"] < c["users"]:
            errs = ", ".join(f"{k}: {v}" for k, v in c["errors"].items()) or "none failed: the budget ran out"
            print(f"  fewer than asked: {errs}")
    warnings(found)
    commands(found)


def soak(results):
    """Every round's messages and restore checks, summed (benches/soak.sh)."""
    found = runs(results, "soak")
    total = {"sent": 0, "acked_ok": 0, "lost": 0, "duplicates": 0, "misrouted": 0}
    restore = {"sample": 0, "ok": 0, "missing_messages": 0, "stored_despite_error": 0,
               "failed_connect": 0, "wrong_identity": 0}
    failed = 0
    for report in found.values():
        message, checked = phase(report, "message"), phase(report, "restore")
        if not message or not checked:
            failed += 1
            continue
        for key in total:
            total[key] += message.get(key, 0)
        for key in restore:
            restore[key] += checked.get(key, 0)
    print(f"rounds with a report: {len(found) - failed} of {len(found)}")
    print(f"messages: sent {total['sent']}, acknowledged {total['acked_ok']}, not delivered live "
          f"{total['lost']} (a node restarting drops its users' sockets), duplicated "
          f"{total['duplicates']}, misrouted {total['misrouted']}")
    print(f"restores: {restore['ok']}/{restore['sample']} with the same identity and a complete "
          f"history; acknowledged messages missing from a history: {restore['missing_messages']}; "
          f"stored despite an error ack: {restore['stored_despite_error']}; reconnects that "
          f"failed: {restore['failed_connect']}")


def main(argv):
    if len(argv) < 3 or argv[1] not in ("nodes", "knee", "api", "emitter", "webhooks", "wait", "blocks", "knee-ok", "directory", "contacts", "soak"):
        print(__doc__, file=sys.stderr)
        return 2
    what, target = argv[1], argv[2]
    p99_max = float(argv[3]) if len(argv) > 3 else 50.0
    if what == "nodes":
        nodes(target)
    elif what == "knee":
        knee(target, p99_max)
    elif what == "webhooks":
        webhooks(target)
    elif what == "wait":
        wait(target)
    elif what == "blocks":
        blocks(target)
    elif what == "emitter":
        emitter(target, float(argv[3]) if len(argv) > 3 else 1000.0)
    elif what == "api":
        knee(target, p99_max, "api")
    elif what == "directory":
        directory(target)
    elif what == "contacts":
        contacts(target)
    elif what == "soak":
        soak(target)
    else:
        report = load(target)
        return 0 if knee_ok((report or {}).get("phases", {}).get("message"), p99_max) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
