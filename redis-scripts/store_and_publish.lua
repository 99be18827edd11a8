-- Stores one private message in both participants' histories, then publishes it on the
-- channels of the users it is for: all of it or none of it. Standalone Redis only (a Redis
-- Cluster keeps the two histories on different slots: there the server appends per key, then
-- publishes).
--
-- KEYS[1]  messages:{from}   the sender's history
-- KEYS[2]  messages:{to}     the recipient's history (absent when a user writes to itself)
-- ARGV[1]  the message, as a JSON string
-- ARGV[2]  the most messages a history keeps (oldest trimmed first)
-- ARGV[3]  a history's time to live, in seconds
-- ARGV[4]  what to publish (the routing envelope)
-- ARGV[5]  one character per channel below: '1' where the publishing node itself subscribes
--          (it delivered to its own sockets already), '0' elsewhere
-- ARGV[6..] the channels to publish it on
--
-- A channel marked '1' is published on only when another client subscribes to it too (a
-- node's tab of the same user, an operator's SUBSCRIBE): with one subscriber, that subscriber
-- is the publisher, which would only drop its echo. Counted here, in the same atomic step as
-- the append, so a node that subscribes after the count reads this message in the history.
--
-- Returns the number of channels published on. An append that fails (a key that is not a
-- list) undoes the appends before it and fails the script before anything is published, so a
-- refused message is neither stored nor delivered.
local cap = tonumber(ARGV[2])
local pushed = {}
for i, key in ipairs(KEYS) do
  local len = redis.pcall('RPUSH', key, ARGV[1])
  if type(len) == 'table' and len.err then
    for _, done in ipairs(pushed) do
      redis.call('RPOP', done)
    end
    return redis.error_reply(len.err)
  end
  pushed[i] = key
  if len > cap then
    redis.call('LTRIM', key, -cap, -1)
  end
  redis.call('EXPIRE', key, ARGV[3])
end
local published = 0
for i = 6, #ARGV do
  local held_here = string.sub(ARGV[5], i - 5, i - 5) == '1'
  if not held_here or redis.call('PUBSUB', 'NUMSUB', ARGV[i])[2] > 1 then
    redis.call('PUBLISH', ARGV[i], ARGV[4])
    published = published + 1
  end
end
return published
