-- Appends one message to ONE user's history, keeping the list bounded and alive.
-- Called once per key (sender's list, then recipient's), so it stays valid on Redis Cluster,
-- where the two lists live in different slots.
--
-- KEYS[1]  messages:{userID}   the history list
-- ARGV[1]  the message, as a JSON string
-- ARGV[2]  the most messages the list keeps (oldest trimmed first)
-- ARGV[3]  the list's time to live, in seconds
--
-- Returns the list's length after the append.
local len = redis.call('RPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if len > cap then
  redis.call('LTRIM', KEYS[1], -cap, -1)
  len = cap
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return len
