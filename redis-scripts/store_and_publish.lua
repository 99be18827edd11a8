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
-- ARGV[5..] the channels to publish it on
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
for i = 5, #ARGV do
  redis.call('PUBLISH', ARGV[i], ARGV[4])
end
return #ARGV - 4
