#!/usr/bin/env python3
"""Turns a MONITOR capture of the nodes scenario into a Redis protocol file that replays the
message batches exactly as the nodes sent them (benches/script-replay.sh runs it).

  script_replay.py lua MONITOR SHA OUT    each store_messages.lua call, sent to the script SHA
  script_replay.py plain MONITOR OUT      the same writes without Lua: per batch MULTI, one
                                          PUBSUB NUMSUB, RPUSH+LTRIM+EXPIRE per history, ZADD+
                                          EXPIRE for the index, EXEC, then the PUBLISHes
                                          (no trim of the index: a capture of a short run
                                          never reaches the cap)

Both print the number of messages. Only the `all` scope's script is replayed: its calls are
recognised by their first key, a conversation index. The capture must come from a build whose
script arguments are laid out as redis-scripts/store_messages.lua says.
"""

import sys

INDEX_PREFIX = b"privmsg:conversation:"
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
            if keys and keys[0].startswith(INDEX_PREFIX):
                yield keys, argv


def messages(keys, argv):
    """The messages of one call: (keys, json, envelope head, held flags, id, channels)."""
    key, arg = 0, 2
    while arg < len(argv):
        count, channels = int(argv[arg]), int(argv[arg + 5])
        json, head, held, mid = argv[arg + 1 : arg + 5]
        yield keys[key : key + count], json, head, held, mid, argv[arg + 6 : arg + 6 + channels]
        key, arg = key + count, arg + 6 + channels


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
        cap, ttl = argv[0], argv[1]
        batch = list(messages(keys, argv))
        total += len(batch)
        command(out, "MULTI")
        held = sorted({ch for m in batch for i, ch in enumerate(m[5]) if m[3][i : i + 1] == b"1"})
        if held:
            command(out, "PUBSUB", "NUMSUB", *held)
        for ks, json, _, _, mid, _ in batch:
            for history in ks[1:]:
                command(out, "RPUSH", history, json)
                command(out, "LTRIM", history, b"-" + cap, b"-1")
                command(out, "EXPIRE", history, ttl)
            command(out, "ZADD", ks[0], b"0", mid + b" " + json)
            command(out, "EXPIRE", ks[0], ttl)
        command(out, "EXEC")
        for _, json, head, flags, _, channels in batch:
            for i, channel in enumerate(channels):
                if flags[i : i + 1] != b"1":
                    command(out, "PUBLISH", channel, head + json)
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
