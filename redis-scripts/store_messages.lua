-- Stores a batch of private messages, each in both participants' histories and, when it
-- exists, in their conversation's index, and publishes each on the channels of the users it is for. Each
-- message is all or nothing, whatever happens to the others of the batch. Standalone Redis
-- only (a Redis Cluster keeps these keys on different slots: there the server writes per key,
-- then publishes). A node sends the messages that arrive while its previous batch is on its
-- way in one call, so that Redis reads, runs and answers them at once.
--
-- KEYS     for each message in turn: privmsg:conversation:{a}:{b} (its conversation's index,
--          a sorted set, scores 0, written only if it exists), messages:{from} (the sender's history), messages:{to}
--          (the recipient's; absent when a user writes to itself)
-- ARGV[1]  the most messages a history keeps (oldest trimmed first; an index, up to 64 more)
-- ARGV[2]  a history's time to live, in seconds
-- ARGV[3..] for each message in turn, 6 + c values:
--          its number of keys above (2 or 3),
--          the message, as a JSON string,
--          the head of what to publish (the routing envelope without its data: the script
--          appends the JSON, so that it crosses the wire once),
--          one character per channel: '1' where the publishing node itself subscribes (it
--          delivered to its own sockets already), '0' elsewhere,
--          the message's id: its member of the index is "<id> <JSON>" (built here, so the
--          JSON crosses the wire once),
--          c, the number of channels, then the c channels to publish it on
--
-- A channel marked '1' is published on only when another client subscribes to it too (a
-- node's tab of the same user, an operator's SUBSCRIBE): with one subscriber, that subscriber
-- is the publisher, which would only drop its echo. Counted here, in the same atomic step as
-- the append, so a node that subscribes after the count reads this message in the history.
--
-- Returns one entry per message: the number of channels it was published on, or the error's
-- text (a string, not an error reply, which would fail the whole batch for the client). A
-- write that fails (a key of another type) undoes that message's writes before it, and nothing
-- of it is published, so a refused message is neither stored nor delivered.
local cap = tonumber(ARGV[1])
local ttl = ARGV[2]

local function store(first_key, last_key, json, envelope, held, id, first_channel, channels)
  local pushed = {}
  local function undo(err)
    for _, done in ipairs(pushed) do
      redis.call('RPOP', done)
    end
    return err
  end
  local lengths = {}
  for i = first_key + 1, last_key do
    local len = redis.pcall('RPUSH', KEYS[i], json)
    if type(len) == 'table' and len.err then
      return undo(len.err)
    end
    pushed[#pushed + 1] = KEYS[i]
    lengths[#lengths + 1] = len
  end
  -- The index exists once a page or a read mark needed it (index_conversation.lua builds it
  -- from a history): until then the histories alone hold the conversation, and a message
  -- costs no third write.
  local index = KEYS[first_key]
  local indexed = redis.call('EXISTS', index) == 1
  if indexed then
    local added = redis.pcall('ZADD', index, 0, id .. ' ' .. json)
    if type(added) == 'table' and added.err then
      return undo(added.err)
    end
  end
  -- Trimmed only once every write took: an undo after a trim would take this message back
  -- but not the oldest one the trim dropped. Every message of the index went into both
  -- histories, and the index expires no later than they do: unless one of them is over the
  -- cap, the index cannot be, so its size is counted only then.
  local over_cap = false
  for n, key in ipairs(pushed) do
    if lengths[n] > cap then
      redis.call('LTRIM', key, -cap, -1)
      over_cap = true
    end
    redis.call('EXPIRE', key, ttl)
  end
  if indexed then
    -- Trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather than one
    -- per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
    if over_cap and redis.call('ZCARD', index) > cap + 64 then
      redis.call('ZREMRANGEBYRANK', index, 0, -cap - 1)
    end
    redis.call('EXPIRE', index, ttl)
  end
  local published = 0
  for c = 1, channels do
    local channel = ARGV[first_channel + c - 1]
    if string.sub(held, c, c) ~= '1' or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1 then
      redis.call('PUBLISH', channel, envelope .. json)
      published = published + 1
    end
  end
  return published
end

local results = {}
local key, arg = 1, 3
while arg <= #ARGV do
  local keys = tonumber(ARGV[arg])
  local channels = tonumber(ARGV[arg + 5])
  results[#results + 1] = store(key, key + keys - 1, ARGV[arg + 1], ARGV[arg + 2],
    ARGV[arg + 3], ARGV[arg + 4], arg + 6, channels)
  key = key + keys
  arg = arg + 6 + channels
end
return results
