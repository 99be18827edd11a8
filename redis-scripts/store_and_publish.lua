-- Stores one private message in both participants' histories and in their conversation's
-- index, then publishes it on the channels of the users it is for: all of it or none of it.
-- Standalone Redis only (a Redis Cluster keeps these keys on different slots: there the server
-- writes per key, then publishes).
--
-- KEYS[1]  privmsg:conversation:{a}:{b}  the conversation's index (a sorted set, scores 0)
-- KEYS[2]  messages:{from}   the sender's history
-- KEYS[3]  messages:{to}     the recipient's history (absent when a user writes to itself)
-- ARGV[1]  the message, as a JSON string
-- ARGV[2]  the most messages a history keeps (oldest trimmed first; an index, up to 64 more)
-- ARGV[3]  a history's time to live, in seconds
-- ARGV[4]  what to publish (the routing envelope)
-- ARGV[5]  one character per channel below: '1' where the publishing node itself subscribes
--          (it delivered to its own sockets already), '0' elsewhere
-- ARGV[6]  the message's id: its member of the index is "<id> <JSON>" (built here, so the JSON
--          crosses the wire once)
-- ARGV[7..] the channels to publish it on
--
-- A channel marked '1' is published on only when another client subscribes to it too (a
-- node's tab of the same user, an operator's SUBSCRIBE): with one subscriber, that subscriber
-- is the publisher, which would only drop its echo. Counted here, in the same atomic step as
-- the append, so a node that subscribes after the count reads this message in the history.
--
-- Returns the number of channels published on. A write that fails (a key of another type)
-- undoes the writes before it and fails the script before anything is published, so a
-- refused message is neither stored nor delivered.
local cap = tonumber(ARGV[2])
local pushed = {}
local function undo()
  for _, done in ipairs(pushed) do
    redis.call('RPOP', done)
  end
end
for i = 2, #KEYS do
  local len = redis.pcall('RPUSH', KEYS[i], ARGV[1])
  if type(len) == 'table' and len.err then
    undo()
    return redis.error_reply(len.err)
  end
  pushed[#pushed + 1] = KEYS[i]
  if len > cap then
    redis.call('LTRIM', KEYS[i], -cap, -1)
  end
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
local indexed = redis.pcall('ZADD', KEYS[1], 0, ARGV[6] .. ' ' .. ARGV[1])
if type(indexed) == 'table' and indexed.err then
  undo()
  return redis.error_reply(indexed.err)
end
-- The index is trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather
-- than one per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
if redis.call('ZCARD', KEYS[1]) > cap + 64 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -cap - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local published = 0
for i = 7, #ARGV do
  local held_here = string.sub(ARGV[5], i - 6, i - 6) == '1'
  if not held_here or redis.call('PUBSUB', 'NUMSUB', ARGV[i])[2] > 1 then
    redis.call('PUBLISH', ARGV[i], ARGV[4])
    published = published + 1
  end
end
return published
