-- Replaces or removes one message in one key (`edit message`, `delete message`): a history
-- (a list of JSON messages) or a conversation index (a sorted set, members "<id> <JSON>").
-- Atomic per key: a reader sees the old entry or the new one, never neither nor both. On a
-- standalone Redis and on a cluster alike (one key per call; a cluster keeps a message's
-- keys on different slots).
--
-- KEYS[1]  messages:{userID} or privmsg:conversation:{a}:{b}
-- ARGV[1]  `list` (a history) or `zset` (an index)
-- ARGV[2]  the entry as stored (the exact JSON, or the index member)
-- ARGV[3]  the entry to put in its place, or the empty string to remove it
--
-- Returns 1 when the key held the entry (now replaced or removed), 0 otherwise (not there, or
-- already changed by another call).
local key, kind, old, new = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if kind == 'list' then
  local at = redis.call('LPOS', key, old)
  if not at then
    return 0
  end
  if new == '' then
    redis.call('LREM', key, 1, old)
  else
    redis.call('LSET', key, at, new)
  end
  return 1
end
if redis.call('ZREM', key, old) == 0 then
  return 0
end
if new ~= '' then
  redis.call('ZADD', key, 0, new)
end
return 1
