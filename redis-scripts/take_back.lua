-- Takes a refused message back out of one history on a Redis Cluster
-- (each key on its own master: one key per call), and puts back what the append's trim
-- dropped, but only when the message was still there. So a retry, or the late pass after a
-- write that timed out, finds nothing to remove and puts nothing back a second time; and
-- nothing is put back into a key that expired meanwhile (it would come back with no TTL).
--
-- KEYS[1]   messages:{userID} (a list), or privmsg:webhooks (a sorted set)
-- ARGV[1]   'list', or 'zset' for a webhook queued with the message (a message reaches its
--           conversation's index only once stored)
-- ARGV[2]   the message's entry: its JSON, or the webhook's job
-- ARGV[3..] what the append's trim dropped, oldest first (none when it dropped nothing, or
--           when the append timed out and what it dropped is not known)
--
-- Returns how many copies of the message it removed (0 or 1).
local key, entry = KEYS[1], ARGV[2]
if ARGV[1] == 'zset' then
  return redis.call('ZREM', key, entry)
end
local removed = redis.call('LREM', key, 0, entry)
-- LPUSH puts each value at the head in turn: the newest dropped first, the oldest last.
for i = #ARGV, 3, -1 do
  if removed > 0 then
    redis.call('LPUSH', key, ARGV[i])
  end
end
return removed
