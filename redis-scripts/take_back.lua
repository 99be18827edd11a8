-- Takes a refused message back out of one history or conversation index on a Redis Cluster
-- (each key on its own master: one key per call), and puts back what the append's trim
-- dropped, but only when the message was still there. So a retry, or the late pass after a
-- write that timed out, finds nothing to remove and puts nothing back a second time; and
-- nothing is put back into a key that expired meanwhile (it would come back with no TTL).
--
-- KEYS[1]   messages:{userID} (a list) or privmsg:conversation:{a}:{b} (a sorted set, scores 0)
-- ARGV[1]   'list' or 'index'
-- ARGV[2]   the message's entry: its JSON in a list, its member ("<id> <JSON>") in an index
-- ARGV[3..] what the append's trim dropped, oldest first (none when it dropped nothing, or
--           when the append timed out and what it dropped is not known)
--
-- Returns how many copies of the message it removed (0 or 1).
local key, kind, entry = KEYS[1], ARGV[1], ARGV[2]
local removed
if kind == 'list' then
  removed = redis.call('LREM', key, 0, entry)
  -- LPUSH puts each value at the head in turn: the newest dropped first, the oldest last.
  for i = #ARGV, 3, -1 do
    if removed > 0 then
      redis.call('LPUSH', key, ARGV[i])
    end
  end
else
  removed = redis.call('ZREM', key, entry)
  for i = 3, #ARGV do
    -- The trim may have read the message's own member (an id that sorts first): never back.
    if removed > 0 and ARGV[i] ~= entry then
      redis.call('ZADD', key, 0, ARGV[i])
    end
  end
end
return removed
