-- USERS_SCOPE=contacts: stores a batch of private messages, each between two different users,
-- in both histories and (when it exists) their conversation's index, makes the two contacts of each other, then
-- publishes: first, when the recipient did not have the sender as a contact, the introduction
-- (`user connected` with the sender's entry) on the recipient's channel, then the message.
-- Each message is all or nothing, whatever happens to the others of the batch (see
-- store_messages.lua, the `all` scope's). Same channel, same connection: a node receives the
-- introduction before the message. Standalone Redis only (on a Redis Cluster the keys sit on
-- different slots: the server runs single-key commands).
--
-- KEYS     for each message in turn, 5 keys: messages:{from} and messages:{to} (the
--          histories), privmsg:contacts:{from} and privmsg:contacts:{to} (sets of userIDs),
--          privmsg:conversation:{a}:{b} (the conversation's index, a sorted set, scores 0,
--          written only if it exists)
-- ARGV[1]  the most messages a history keeps (oldest trimmed first; an index, up to 64 more)
-- ARGV[2]  a history's time to live, in seconds
-- ARGV[3]  a contact set's time to live, in seconds
-- ARGV[4..] for each message in turn, 9 + c values:
--          the message, as a JSON string; the sender's userID; the recipient's userID;
--          the head of the message's routing envelope (without its data: the script appends
--          the JSON, so that it crosses the wire once); the introduction's routing envelope;
--          the recipient's channel (where the introduction goes);
--          one character for the recipient's channel, then one per channel of the message:
--          '1' where the publishing node itself subscribes (it delivered to its own sockets
--          already), '0' elsewhere;
--          the message's id (its member of the index is "<id> <JSON>", built here);
--          c, the number of channels of the message, then those c channels
--
-- A channel marked '1' is published on only when another client subscribes to it too: with
-- one subscriber, that subscriber is the publisher, which would only drop its echo. Counted in
-- the same atomic step as the writes, so a node that subscribes later reads the history.
--
-- Returns one entry per message: 1 when it made the recipient a contact of the sender (the
-- introduction was published), 0 otherwise, or the error's text (a string, not an error reply,
-- which would fail the whole batch for the client). A write that fails (a key of the wrong
-- type) undoes that message's writes before it, and nothing of it is published.
local cap = tonumber(ARGV[1])
local history_ttl = ARGV[2]
local contact_ttl = ARGV[3]

local function store(k, a, channels)
  local json, from, to = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local envelope, introduction, recipient = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local held = ARGV[a + 6]
  local index = KEYS[k + 4]
  local member = ARGV[a + 7] .. ' ' .. json
  local pushed = {}
  local added = {}
  local indexed = false
  local function undo(err)
    for _, key in ipairs(pushed) do
      redis.call('RPOP', key)
    end
    if indexed then
      redis.call('ZREM', index, member)
    end
    for _, pair in ipairs(added) do
      redis.call('SREM', pair[1], pair[2])
    end
    return err
  end
  local lengths = {}
  for i = k, k + 1 do
    local len = redis.pcall('RPUSH', KEYS[i], json)
    if type(len) == 'table' and len.err then
      return undo(len.err)
    end
    pushed[#pushed + 1] = KEYS[i]
    lengths[#lengths + 1] = len
  end
  -- Only an index that exists (see store_messages.lua).
  if redis.call('EXISTS', index) == 1 then
    local added_to_index = redis.pcall('ZADD', index, 0, member)
    if type(added_to_index) == 'table' and added_to_index.err then
      return undo(added_to_index.err)
    end
    indexed = true
  end
  -- Whether the n-th channel of the flags must be published on.
  local function wanted(n, channel)
    return string.sub(held, n, n) ~= '1' or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1
  end
  local introduced = 0
  for _, pair in ipairs({ { KEYS[k + 2], to }, { KEYS[k + 3], from } }) do
    local new = redis.pcall('SADD', pair[1], pair[2])
    if type(new) == 'table' and new.err then
      return undo(new.err)
    end
    if new == 1 then
      added[#added + 1] = pair
      if pair[1] == KEYS[k + 3] then
        introduced = 1
      end
    end
    redis.call('EXPIRE', pair[1], contact_ttl)
  end
  -- Trimmed only once every write took, by store_messages.lua's rule: an undo after a trim
  -- would take this message back but not the oldest one the trim dropped; the index is
  -- counted only when a history is over the cap.
  local over_cap = false
  for n, key in ipairs(pushed) do
    if lengths[n] > cap then
      redis.call('LTRIM', key, -cap, -1)
      over_cap = true
    end
    redis.call('EXPIRE', key, history_ttl)
  end
  if indexed then
    -- Trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather than one
    -- per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
    if over_cap and redis.call('ZCARD', index) > cap + 64 then
      redis.call('ZREMRANGEBYRANK', index, 0, -cap - 1)
    end
    redis.call('EXPIRE', index, history_ttl)
  end
  if introduced == 1 and wanted(1, recipient) then
    redis.call('PUBLISH', recipient, introduction)
  end
  for c = 1, channels do
    local channel = ARGV[a + 8 + c]
    if wanted(c + 1, channel) then
      redis.call('PUBLISH', channel, envelope .. json)
    end
  end
  return introduced
end

local results = {}
local key, arg = 1, 4
while arg <= #ARGV do
  local channels = tonumber(ARGV[arg + 8])
  results[#results + 1] = store(key, arg, channels)
  key = key + 5
  arg = arg + 9 + channels
end
return results
