-- USERS_SCOPE=contacts: stores one private message between two different users in both
-- histories, makes them contacts of each other, then publishes: first, when the recipient did
-- not have the sender as a contact, the introduction (`user connected` with the sender's
-- entry) on the recipient's channel, then the message; all of it or none of it. Same channel,
-- same connection: a node receives the introduction before the message. Standalone Redis only
-- (on a Redis Cluster the keys sit on different slots: the server runs single-key commands).
--
-- KEYS[1]  messages:{from}            the sender's history
-- KEYS[2]  messages:{to}              the recipient's history
-- KEYS[3]  privmsg:contacts:{from}    the sender's contacts (a set of userIDs)
-- KEYS[4]  privmsg:contacts:{to}      the recipient's contacts
-- KEYS[5]  privmsg:conversation:{a}:{b}  the conversation's index (a sorted set, scores 0)
-- ARGV[1]  the message, as a JSON string
-- ARGV[2]  the most messages a history keeps (oldest trimmed first)
-- ARGV[3]  a history's time to live, in seconds
-- ARGV[4]  a contact set's time to live, in seconds
-- ARGV[5]  the sender's userID
-- ARGV[6]  the recipient's userID
-- ARGV[7]  the message's routing envelope
-- ARGV[8]  the introduction's routing envelope
-- ARGV[9]  the recipient's channel (where the introduction goes)
-- ARGV[10] one character for ARGV[9], then one per channel below: '1' where the publishing
--          node itself subscribes (it delivered to its own sockets already), '0' elsewhere
-- ARGV[11] the message's id: its member of the index is "<id> <JSON>" (built here, so the JSON
--          crosses the wire once)
-- ARGV[12..] the channels of the message
--
-- A channel marked '1' is published on only when another client subscribes to it too: with
-- one subscriber, that subscriber is the publisher, which would only drop its echo. Counted in
-- the same atomic step as the writes, so a node that subscribes later reads the history.
--
-- Returns 1 when this message made the recipient a contact of the sender (the introduction was
-- published), 0 otherwise. A write that fails (a key of the wrong type) undoes the writes
-- before it and fails the script before anything is published.
local cap = tonumber(ARGV[2])
local pushed = {}
local added = {}
local member = ARGV[11] .. ' ' .. ARGV[1]
local indexed = false
local function undo()
  for _, key in ipairs(pushed) do
    redis.call('RPOP', key)
  end
  if indexed then
    redis.call('ZREM', KEYS[5], member)
  end
  for _, pair in ipairs(added) do
    redis.call('SREM', pair[1], pair[2])
  end
end
for i = 1, 2 do
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
local added_to_index = redis.pcall('ZADD', KEYS[5], 0, member)
if type(added_to_index) == 'table' and added_to_index.err then
  undo()
  return redis.error_reply(added_to_index.err)
end
indexed = true
-- The index is trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather
-- than one per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
if redis.call('ZCARD', KEYS[5]) > cap + 64 then
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -cap - 1)
end
redis.call('EXPIRE', KEYS[5], ARGV[3])
-- Whether the n-th channel of the flags (ARGV[10]) must be published on.
local function wanted(n, channel)
  return string.sub(ARGV[10], n, n) ~= '1' or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1
end
local introduced = 0
for _, pair in ipairs({ { KEYS[3], ARGV[6] }, { KEYS[4], ARGV[5] } }) do
  local new = redis.pcall('SADD', pair[1], pair[2])
  if type(new) == 'table' and new.err then
    undo()
    return redis.error_reply(new.err)
  end
  if new == 1 then
    added[#added + 1] = pair
    if pair[1] == KEYS[4] then
      introduced = 1
    end
  end
  redis.call('EXPIRE', pair[1], ARGV[4])
end
if introduced == 1 and wanted(1, ARGV[9]) then
  redis.call('PUBLISH', ARGV[9], ARGV[8])
end
for i = 12, #ARGV do
  if wanted(i - 10, ARGV[i]) then
    redis.call('PUBLISH', ARGV[i], ARGV[7])
  end
end
return introduced
