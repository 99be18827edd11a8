-- Adds one stored message to its conversation's index, if the index exists. Redis Cluster
-- only, one key (on a standalone Redis store_messages.lua does the same in the call that
-- stores the message). The rule of both modes: a conversation is indexed from the first page
-- or read mark that needs it on (src/store/pages.rs), and a message costs no third write
-- before that. Sent once the message's histories took it (never for a refused message).
--
-- KEYS[1]  privmsg:conversation:{a}:{b}  the conversation's index
-- ARGV[1]  the message's id
-- ARGV[2]  the message, as a JSON string (its member is "<id> <JSON>", built here, so the
--          JSON crosses the wire once)
-- ARGV[3]  the most messages a history keeps: the index is trimmed back to it once it holds
--          64 more (one removal per 64 messages, as store_messages.lua)
-- ARGV[4]  a history's time to live, in seconds, restarted here as on the histories
--
-- Returns 1 when it added the message, 0 when there is no index.

-- ZCARD tells both whether the index exists and whether it is due for a trim: one command.
local size = redis.call('ZCARD', KEYS[1])
if size == 0 then
  return 0
end
local cap = tonumber(ARGV[3])
size = size + redis.call('ZADD', KEYS[1], 0, ARGV[1] .. ' ' .. ARGV[2])
if size > cap + 64 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -cap - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
