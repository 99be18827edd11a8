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
-- KEYS     for each message in turn, the keys its pairs below name, in the order of its pairs:
--          messages:{userID} for `histories` (its value says how many), then
--          privmsg:conversation:{a}:{b} for `index`, privmsg:contacts:{userID} for
--          `sender_contacts` and `recipient_contacts`, privmsg:webhooks for each `webhook`,
--          privmsg:blocks:{...} (the recipient's block list) for `blocks`
-- ARGV[1]  the most messages a history keeps (oldest trimmed first; an index, up to 64 more)
-- ARGV[2]  a history's (and an index's) time to live, in seconds
-- ARGV[3]  a contact set's time to live, in seconds
-- ARGV[4..] for each message in turn: n, then n name/value pairs, in any order but for the keys
--          (each pair that names keys takes the next ones):
--          json                the message, as a JSON string (once)
--          envelope            the head of what to publish: the routing envelope without its
--                              data (the script appends the JSON, so that it crosses the wire once)
--          histories           keys: the participants' histories (lists); value: how many,
--                              2, or 1 when a user writes to itself
--          index               key: the conversation's index (a sorted set, scores 0, written
--                              only if it exists); value: the message's id (its member is
--                              "<id> <JSON>", built here, so the JSON crosses the wire once)
--          channel             a channel to publish the message on (one pair each, in order)
--          channel_unless_alone  one to publish it on only when another client subscribes to
--                              it too (the node decided which: src/routing/publisher)
--          only for a message that makes contacts:
--          sender_contacts     key: the sender's contact set; value: the recipient's userID
--          recipient_contacts  key: the recipient's contact set; value: the sender's userID
--          introduction        the whole introduction to publish when the recipient's set did
--                              not hold the sender
--          introduce           a channel to publish it on (the recipient's);
--          introduce_unless_alone  one, only when another client subscribes to it too
--          blocks              key: the recipient's block list (keys::blocks); value: the
--                              sender's userID. When the list holds the sender, the message
--                              goes to the sender's history only (the first of `histories`):
--                              no recipient history, index, recipient contact, introduction
--                              or webhook, and it is published only on `sender_channel`
--          sender_channel      the sender's own channel (one of the `channel` pairs): the one a
--                              blocked message is still published on, for the sender's tabs
--          webhook             key: the webhook queue (a sorted set); value: "<due ms> <job>",
--                              a delivery queued with the message, so that a stored message
--                              always has its webhooks (src/webhooks/); one pair each
--
-- An `_unless_alone` channel is one the publishing node subscribes to itself (it emitted to its
-- own sockets already): with one subscriber, that subscriber is the publisher, which would only
-- drop its echo (publish.lua applies the same count to what is not stored). Counted here, in
-- the same atomic step as the writes, so a node that subscribes after the count reads this
-- message in the history.
--
-- Returns one entry per message: 1 when it made the recipient a contact of the sender (the
-- introduction was published), 2 when the recipient blocked the sender (stored in the
-- sender's history only), 0 otherwise, or the error's text (a string, not an error reply,
-- which would fail the whole batch for the client). A write that fails (a key of another type)
-- undoes that message's writes before it, and nothing of it is published, so a refused message
-- is neither stored nor delivered. An unknown name fails the whole call (a server bug).
local cap = tonumber(ARGV[1])
local history_ttl = ARGV[2]
local contact_ttl = ARGV[3]

-- Whether a write's reply is Redis's refusal.
local function refused(reply)
  return type(reply) == 'table' and reply.err
end

-- Publishes `payload` on the channels of the pairs `first`..`last` named `plain` or
-- `unless_alone`, in their order; an `unless_alone` one only when another client subscribes
-- to it too.
-- With `only`, only on that channel.
local function publish(first, last, plain, unless_alone, payload, only)
  for p = first, last, 2 do
    local name, channel = ARGV[p], ARGV[p + 1]
    if only and channel ~= only then
      -- the recipient's channel of a blocked message
    elseif name == plain
        or (name == unless_alone and redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1) then
      redis.call('PUBLISH', channel, payload)
    end
  end
end

-- Stores the message of the pairs `first`..`last` (name at `p`, value at `p + 1`), whose keys
-- start at KEYS[k]. Read into locals, not tables: a message costs no allocation but its undo.
-- Returns its result and where the next message's keys start.
local function store(first, last, k)
  local json, envelope, history1, history2, index, id, introduction
  local sender_set, sender_peer, recipient_set, recipient_peer, own_channel
  local blocked = false
  -- Key, then value, of each webhook pair: a table only for a message that has some.
  local webhooks
  for p = first, last, 2 do
    local name, value = ARGV[p], ARGV[p + 1]
    if name == 'json' then
      json = value
    elseif name == 'envelope' then
      envelope = value
    elseif name == 'histories' then
      history1 = KEYS[k]
      if value == '2' then
        history2 = KEYS[k + 1]
      end
      k = k + tonumber(value)
    elseif name == 'index' then
      index, id, k = KEYS[k], value, k + 1
    elseif name == 'sender_contacts' then
      sender_set, sender_peer, k = KEYS[k], value, k + 1
    elseif name == 'recipient_contacts' then
      recipient_set, recipient_peer, k = KEYS[k], value, k + 1
    elseif name == 'introduction' then
      introduction = value
    elseif name == 'blocks' then
      blocked = redis.call('SISMEMBER', KEYS[k], value) == 1
      k = k + 1
    elseif name == 'sender_channel' then
      own_channel = value
    elseif name == 'webhook' then
      webhooks = webhooks or {}
      webhooks[#webhooks + 1] = KEYS[k]
      webhooks[#webhooks + 1] = value
      k = k + 1
    elseif name ~= 'channel' and name ~= 'channel_unless_alone' and name ~= 'introduce'
        and name ~= 'introduce_unless_alone' then
      error('store_messages.lua: unknown name ' .. tostring(name))
    end
  end

  if blocked then
    -- Kept for the sender alone: the recipient's writes and everything that would reach it
    -- are dropped here, with no round trip of their own.
    history2, index, recipient_set, webhooks = nil, nil, nil, nil
  end
  local pushed, member, sender_added, recipient_added = 0, nil, false, false
  local queued = 0
  local function undo(err)
    if pushed >= 1 then redis.call('RPOP', history1) end
    if pushed == 2 then redis.call('RPOP', history2) end
    if member then redis.call('ZREM', index, member) end
    if sender_added then redis.call('SREM', sender_set, sender_peer) end
    if recipient_added then redis.call('SREM', recipient_set, recipient_peer) end
    for w = 1, queued * 2, 2 do
      redis.call('ZREM', webhooks[w], string.match(webhooks[w + 1], '^%d+ (.*)$'))
    end
    return err
  end
  local length1 = redis.pcall('RPUSH', history1, json)
  if refused(length1) then
    return undo(length1.err), k
  end
  pushed = 1
  local length2 = 0
  if history2 then
    length2 = redis.pcall('RPUSH', history2, json)
    if refused(length2) then
      return undo(length2.err), k
    end
    pushed = 2
  end
  -- The index exists once a page or a read mark needed it (index_conversation.lua builds it
  -- from a history): until then the histories alone hold the conversation, and a message
  -- costs no third write.
  if index and redis.call('EXISTS', index) == 1 then
    local entry = id .. ' ' .. json
    local indexed = redis.pcall('ZADD', index, 0, entry)
    if refused(indexed) then
      return undo(indexed.err), k
    end
    member = entry
  end
  if sender_set then
    local new = redis.pcall('SADD', sender_set, sender_peer)
    if refused(new) then
      return undo(new.err), k
    end
    sender_added = new == 1
  end
  if recipient_set then
    local new = redis.pcall('SADD', recipient_set, recipient_peer)
    if refused(new) then
      return undo(new.err), k
    end
    recipient_added = new == 1
  end
  if webhooks then
    for w = 1, #webhooks, 2 do
      local due, job = string.match(webhooks[w + 1], '^(%d+) (.*)$')
      local added = redis.pcall('ZADD', webhooks[w], due, job)
      if refused(added) then
        return undo(added.err), k
      end
      queued = queued + 1
    end
  end
  -- Trimmed (and kept alive) only once every write took: an undo after a trim would take this
  -- message back but not the oldest one the trim dropped. Every message of the index went into
  -- both histories, and the index expires no later than they do: unless one of them is over
  -- the cap, the index cannot be, so its size is counted only then.
  local over_cap = length1 > cap or length2 > cap
  if length1 > cap then
    redis.call('LTRIM', history1, -cap, -1)
  end
  redis.call('EXPIRE', history1, history_ttl)
  if history2 then
    if length2 > cap then
      redis.call('LTRIM', history2, -cap, -1)
    end
    redis.call('EXPIRE', history2, history_ttl)
  end
  if member then
    -- Trimmed back to `cap` once it holds 64 more: a removal per 64 messages rather than one
    -- per message (a third of the script's cost at the cap, measured in BENCHMARKS.md).
    if over_cap and redis.call('ZCARD', index) > cap + 64 then
      redis.call('ZREMRANGEBYRANK', index, 0, -cap - 1)
    end
    redis.call('EXPIRE', index, history_ttl)
  end
  if sender_set then
    redis.call('EXPIRE', sender_set, contact_ttl)
  end
  if recipient_set then
    redis.call('EXPIRE', recipient_set, contact_ttl)
  end
  -- The recipient did not have the sender: introduced, first, on the same channels.
  if recipient_added then
    publish(first, last, 'introduce', 'introduce_unless_alone', introduction)
  end
  if blocked then
    publish(first, last, 'channel', 'channel_unless_alone', envelope .. json, own_channel or '')
    return 2, k
  end
  publish(first, last, 'channel', 'channel_unless_alone', envelope .. json)
  return recipient_added and 1 or 0, k
end

local results = {}
local key, arg = 1, 4
while arg <= #ARGV do
  local last = arg + 2 * tonumber(ARGV[arg])
  results[#results + 1], key = store(arg + 1, last - 1, key)
  arg = last + 1
end
return results
