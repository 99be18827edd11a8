-- Removes the sockets a dead node left in one session; when none remain, marks the session
-- offline. Run by a surviving node for each session in the dead node's index (by a node
-- leaving, on itself), and by a node's refresh for one of its own fields that no socket of it
-- holds (the whole field as the prefix).
--
-- KEYS[1]  session:{sessionID}   the session hash
-- ARGV[1]  the dead node's field prefix, "socket:{nodeID}:", or one socket's field
-- ARGV[2]  the session's time to live, in seconds
--
-- Returns the userID when the user went offline (the caller announces it), false otherwise.
-- Idempotent: a second sweep of the same node finds nothing to remove and returns false.
local prefix = ARGV[1]
local removed = 0
local remaining = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], field)
    removed = removed + 1
  elseif string.sub(field, 1, 7) == 'socket:' then
    remaining = remaining + 1
  end
end
if removed == 0 or remaining > 0 then
  return false
end
redis.call('HSET', KEYS[1], 'connected', 'false')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HGET', KEYS[1], 'userID')
