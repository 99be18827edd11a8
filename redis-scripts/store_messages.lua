-- Stores a batch of private messages, each in its participants' histories and, when it exists,
-- in their conversation's index; for a message that makes two users contacts (the `contacts`
-- scope), in both contact sets too; then publishes each: first, when it made the recipient a
-- contact of the sender, the introduction (`user connected` with the sender's entry), then the
-- message, on the same channel, so that a node receives the introduction first. Each message is
-- all or nothing, whatever happens to the others of the batch. Standalone Redis only (a Redis
-- Cluster keeps these keys on different slots: there the server writes per key, then
-- publishes). A node sends the messages that arrive while its previous batch is on its way in
-- one call, so that Redis reads, runs and answers them at once.
--
-- KEYS     for each message in turn, one key per pair below that names a key, in the order of
--          its pairs: messages:{userID} for `history`, privmsg:conversation:{a}:{b} for `index`,
--          privmsg:contacts:{userID} for `sender_contacts` and `recipient_contacts`
-- ARGV[1]  the most messages a history keeps (oldest trimmed first; an index, up to 64 more)
-- ARGV[2]  a history's (and an index's) time to live, in seconds
-- ARGV[3]  a contact set's time to live, in seconds
-- ARGV[4..] for each message in turn: n, then n name/value pairs, in any order but for the keys
--          (each pair that names a key takes the next one):
--          json                the message, as a JSON string (once)
--          envelope            the head of what to publish: the routing envelope without its
--                              data (the script appends the JSON, so that it crosses the wire once)
--          history             key: a participant's history (a list); value: its userID.
--                              Once per participant: twice, or once when a user writes to itself
--          index               key: the conversation's index (a sorted set, scores 0, written
--                              only if it exists); value: the message's id (its member is
--                              "<id> <JSON>", built here, so the JSON crosses the wire once)
--          channel             a channel to publish the message on
--          channel_held        one too, which the publishing node itself subscribes to (it
--                              delivered to its own sockets already)
--          only for a message that makes contacts:
--          sender_contacts     key: the sender's contact set; value: the recipient's userID
--          recipient_contacts  key: the recipient's contact set; value: the sender's userID
--          introduction        the whole introduction to publish when the recipient's set did
--                              not hold the sender
--          introduce           a channel to publish it on (the recipient's);
--          introduce_held      one, which the publishing node itself subscribes to
--
-- A `_held` channel is published on only when another client subscribes to it too (a node's
-- tab of the same user, an operator's SUBSCRIBE): with one subscriber, that subscriber is the
-- publisher, which would only drop its echo. Counted here, in the same atomic step as the
-- writes, so a node that subscribes after the count reads this message in the history.
--
-- Returns one entry per message: 1 when it made the recipient a contact of the sender (the
-- introduction was published), 0 otherwise, or the error's text (a string, not an error reply,
-- which would fail the whole batch for the client). A write that fails (a key of another type)
-- undoes that message's writes before it, and nothing of it is published, so a refused message
-- is neither stored nor delivered. An unknown name fails the whole call (a server bug).
local cap = tonumber(ARGV[1])
local history_ttl = ARGV[2]
local contact_ttl = ARGV[3]

-- What each name does to the message being read (`m`), given its value and, for the names
-- that carry one, its key.
local read = {
  json = function(m, value) m.json = value end,
  envelope = function(m, value) m.envelope = value end,
  history = function(m, _, key) m.histories[#m.histories + 1] = key end,
  index = function(m, value, key) m.index, m.id = key, value end,
  channel = function(m, value) m.channels[#m.channels + 1] = value end,
  channel_held = function(m, value)
    m.channels[#m.channels + 1] = value
    m.held[#m.channels] = true
  end,
  sender_contacts = function(m, value, key)
    m.contacts[#m.contacts + 1] = { key, value, false }
  end,
  recipient_contacts = function(m, value, key)
    m.contacts[#m.contacts + 1] = { key, value, true }
  end,
  introduction = function(m, value) m.introduction = value end,
  introduce = function(m, value) m.introduce[#m.introduce + 1] = value end,
  introduce_held = function(m, value)
    m.introduce[#m.introduce + 1] = value
    m.introduce_held[#m.introduce] = true
  end,
}
local carries_key = { history = true, index = true, sender_contacts = true, recipient_contacts = true }

-- Publishes `payload` on each of `channels`, skipping a held one nobody else subscribes to.
local function publish(channels, held, payload)
  for n, channel in ipairs(channels) do
    if not held[n] or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1 then
      redis.call('PUBLISH', channel, payload)
    end
  end
end

-- Whether a write's reply is Redis's refusal.
local function refused(reply)
  return type(reply) == 'table' and reply.err
end

local function store(m)
  local pushed, lengths, added = {}, {}, {}
  local member
  local function undo(err)
    for _, key in ipairs(pushed) do
      redis.call('RPOP', key)
    end
    if member then
      redis.call('ZREM', m.index, member)
    end
    for _, contact in ipairs(added) do
      redis.call('SREM', contact[1], contact[2])
    end
    return err
  end
  for _, key in ipairs(m.histories) do
    local len = redis.pcall('RPUSH', key, m.json)
    if refused(len) then
      return undo(len.err)
    end
    pushed[#pushed + 1] = key
    lengths[#lengths + 1] = len
  end
  -- The index exists once a page or a read mark needed it (index_conversation.lua builds it
  -- from a history): until then the histories alone hold the conversation, and a message
  -- costs no third write.
  if m.index and redis.call('EXISTS', m.index) == 1 then
    local entry = m.id .. ' ' .. m.json
    local indexed = redis.pcall('ZADD', m.index, 0, entry)
    if refused(indexed) then
      return undo(indexed.err)
    end
    member = entry
  end
  local introduced = 0
  for _, contact in ipairs(m.contacts) do
    local new = redis.pcall('SADD', contact[1], contact[2])
    if refused(new) then
      return undo(new.err)
    end
    if new == 1 then
      added[#added + 1] = contact
      if contact[3] then
        introduced = 1
      end
    end
  end
  -- Trimmed (and kept alive) only once every write took: an undo after a trim would take this
  -- message back but not the oldest one the trim dropped. Every message of the index went into
  -- both histories, and the index expires no later than they do: unless one of them is over
  -- the cap, the index cannot be, so its size is counted only then.
  local over_cap = false
  for n, key in ipairs(pushed) do
    if lengths[n] > cap then
      redis.call('LTRIM', key, -cap, -1)
      over_cap = true
    end
    redis.call('EXPIRE', key, history_ttl)
  end
  if member then
    -- Trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather than one
    -- per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
    if over_cap and redis.call('ZCARD', m.index) > cap + 64 then
      redis.call('ZREMRANGEBYRANK', m.index, 0, -cap - 1)
    end
    redis.call('EXPIRE', m.index, history_ttl)
  end
  for _, contact in ipairs(m.contacts) do
    redis.call('EXPIRE', contact[1], contact_ttl)
  end
  if introduced == 1 then
    publish(m.introduce, m.introduce_held, m.introduction)
  end
  publish(m.channels, m.held, m.envelope .. m.json)
  return introduced
end

local results = {}
local key, arg = 1, 4
while arg <= #ARGV do
  local count = tonumber(ARGV[arg])
  local m = { histories = {}, channels = {}, held = {}, contacts = {}, introduce = {}, introduce_held = {} }
  for p = arg + 1, arg + 2 * count, 2 do
    local name, value = ARGV[p], ARGV[p + 1]
    local named_key
    if carries_key[name] then
      named_key = KEYS[key]
      key = key + 1
    end
    local reader = read[name]
    if not reader then
      return redis.error_reply('store_messages.lua: unknown name ' .. tostring(name))
    end
    reader(m, value, named_key)
  end
  results[#results + 1] = store(m)
  arg = arg + 1 + 2 * count
end
return results
