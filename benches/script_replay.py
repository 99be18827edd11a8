#!/usr/bin/env python3
"""Turns a MONITOR capture of the nodes scenario into a Redis protocol file that replays the
message batches exactly as the nodes sent them (benches/script-replay.sh runs it).

  script_replay.py lua MONITOR SHA OUT    each store_messages.lua call, sent to the script SHA
  script_replay.py plain MONITOR OUT      the same writes without Lua: per batch MULTI, one
                                          PUBSUB NUMSUB, RPUSH+LTRIM+EXPIRE per history, ZADD+
                                          EXPIRE for the index, SADD+EXPIRE per contact set,
                                          EXEC, then the PUBLISHes (no trim of the index: a
                                          capture of a short run never reaches the cap; the
                                          introductions are not published)

Both print the number of messages. A store_messages.lua call is recognised by its first
message's first pair, `json`. The capture must come from a build whose script arguments are laid
out as redis-scripts/store_messages.lua says (named pairs).
"""

import sys

KEYED = {b"index", b"sender_contacts", b"recipient_contacts"}
ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}


def arguments(line):
    """The arguments of one MONITOR line: `<time> [<db> <client>] "arg" "arg" ...`."""
    out, i = [], line.index("] ") + 2
    while i < len(line):
        if line[i] != '"':
            i += 1
            continue
        i += 1
        arg = bytearray()
        while line[i] != '"':
            if line[i] == "\\":
                if line[i + 1] == "x":
                    arg.append(int(line[i + 2 : i + 4], 16))
                    i += 4
                else:
                    arg += ESCAPES[line[i + 1]]
                    i += 2
            else:
                arg += line[i].encode()
                i += 1
        out.append(bytes(arg))
        i += 1
    return out


def batches(path):
    """Each client-sent store_messages.lua call: (keys, argv)."""
    with open(path, encoding="utf-8", errors="replace") as capture:
        for line in capture:
            if '"EVALSHA"' not in line or "[0 lua]" in line:
                continue
            args = arguments(line.rstrip("\n"))
            count = int(args[2])
            keys, argv = args[3 : 3 + count], args[3 + count :]
            if len(argv) > 4 and argv[4] == b"json":
                yield keys, argv


def messages(keys, argv):
    """The messages of one call, each a dict: name -> list of (value, key or None)."""
    key, arg = 0, 3
    while arg < len(argv):
        count, message = int(argv[arg]), {}
        for p in range(arg + 1, arg + 1 + 2 * count, 2):
            name, value = argv[p], argv[p + 1]
            if name == b"histories":
                for _ in range(int(value)):
                    message.setdefault(name, []).append((value, keys[key]))
                    key += 1
                continue
            named_key = None
            if name in KEYED:
                named_key, key = keys[key], key + 1
            message.setdefault(name, []).append((value, named_key))
        yield message
        arg += 1 + 2 * count


def one(message, name):
    return message[name][0][0]


def command(out, *args):
    args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))


def lua(capture, sha, out):
    total = 0
    for keys, argv in batches(capture):
        command(out, "EVALSHA", sha, len(keys), *keys, *argv)
        total += sum(1 for _ in messages(keys, argv))
    return total


def plain(capture, out):
    total = 0
    for keys, argv in batches(capture):
        cap, ttl, contact_ttl = argv[0], argv[1], argv[2]
        batch = list(messages(keys, argv))
        total += len(batch)
        command(out, "MULTI")
        held = sorted({ch for m in batch for ch, _ in m.get(b"channel_held", [])})
        if held:
            command(out, "PUBSUB", "NUMSUB", *held)
        for m in batch:
            json = one(m, b"json")
            for _, history in m[b"histories"]:
                command(out, "RPUSH", history, json)
                command(out, "LTRIM", history, b"-" + cap, b"-1")
                command(out, "EXPIRE", history, ttl)
            for mid, index in m.get(b"index", []):
                command(out, "ZADD", index, b"0", mid + b" " + json)
                command(out, "EXPIRE", index, ttl)
            for name in (b"sender_contacts", b"recipient_contacts"):
                for peer, contacts in m.get(name, []):
                    command(out, "SADD", contacts, peer)
                    command(out, "EXPIRE", contacts, contact_ttl)
        command(out, "EXEC")
        for m in batch:
            payload = one(m, b"envelope") + one(m, b"json")
            for channel, _ in m.get(b"channel", []):
                command(out, "PUBLISH", channel, payload)
    return total


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "lua" and len(sys.argv) == 5:
        with open(sys.argv[4], "wb") as out:
            print(lua(sys.argv[2], sys.argv[3].encode(), out))
    elif mode == "plain" and len(sys.argv) == 4:
        with open(sys.argv[3], "wb") as out:
            print(plain(sys.argv[2], out))
    else:
        sys.exit(__doc__)
