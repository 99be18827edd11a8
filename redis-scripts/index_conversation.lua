-- Builds a conversation's index from one participant's history, the first time a page or a
-- read mark of that conversation needs it (the rule of both modes, src/store/pages.rs). Until
-- then the two histories alone hold the conversation, and a message costs no third write: the
-- store scripts add a message only to an index that exists. Standalone Redis only (three keys
-- on different slots; a Redis Cluster node builds it in steps, ClusterLog::build_index). Run
-- atomically with the store scripts, so the index it leaves holds every message of the
-- conversation from its oldest on.
--
-- KEYS[1]  privmsg:conversation:{a}:{b}  the conversation's index
-- KEYS[2]  messages:{me}    the history it is built from (the caller's)
-- KEYS[3]  messages:{peer}  the other history (its time to live, and which of the caller's
--                           messages it holds)
-- ARGV[1]  me, ARGV[2] peer (userIDs as the messages' JSON spells them: `"` and `\` escaped)
-- ARGV[3]  a history's time to live, in seconds, for when neither history has one
-- ARGV[4]  the most messages a history keeps (HISTORY_CAP)
--
-- What it indexes: the messages between the two, newest first, back to the first entry of
-- the history without an id (one written by the Node server): that one, and all that is
-- older, stay where `fetch messages` finds them today, in the history. Entries are matched as
-- the server writes them (`"from":"<a>","to":"<b>"` in that order, `"id":"<id>"`: a unit
-- test of `domain/message.rs` holds that form). The index then
-- expires with the sooner of the two histories, as store_messages.lua keeps it.
--
-- A message the caller sent that the peer's history lacks, though that history was never
-- trimmed (shorter than the cap) or reaches back past it (its oldest message with an id is
-- older), was withheld from the peer: the peer had blocked the caller (`block user`,
-- store_messages.lua). It stays out of the index the two share, as it stays out of the peer's
-- history; a message the peer's history lost to its own trim is older than all it holds, and
-- is indexed.
--
-- Returns how many messages it indexed: 0 when the index existed or nothing had an id.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local me, peer = ARGV[1], ARGV[2]
-- Read as text, not decoded (decoding every entry of a full history would hold Redis for
-- milliseconds): inside a JSON string every quote is escaped, so these quoted fields can only
-- be the message's own, whatever its content says.
local pair = {
  '"from":"' .. me .. '","to":"' .. peer .. '"',
  '"from":"' .. peer .. '","to":"' .. me .. '"',
}
local theirs, oldest = {}, nil
local peer_history = redis.call('LRANGE', KEYS[3], 0, -1)
local untrimmed = #peer_history < tonumber(ARGV[4])
for _, entry in ipairs(peer_history) do
  local id = string.match(entry, '"id":"([^"]+)"')
  if id then
    oldest = oldest or id
    if string.find(entry, pair[1], 1, true) then
      theirs[id] = true
    end
  end
end
local function withheld(entry, id)
  return (untrimmed or (oldest ~= nil and id > oldest)) and not theirs[id]
    and string.find(entry, pair[1], 1, true)
end
local history = redis.call('LRANGE', KEYS[2], 0, -1)
local members = {}
for i = #history, 1, -1 do
  local entry = history[i]
  local id = string.match(entry, '"id":"([^"]+)"')
  if not id then
    break
  end
  if (string.find(entry, pair[1], 1, true) or string.find(entry, pair[2], 1, true))
      and not withheld(entry, id) then
    members[#members + 1] = id .. ' ' .. entry
  end
end
if #members == 0 then
  return 0
end
-- ZADD in slices: Lua's `unpack` has a bounded stack, and HISTORY_CAP has no upper bound.
local slice = 256
for first = 1, #members, slice do
  local args = {}
  for i = first, math.min(first + slice - 1, #members) do
    args[#args + 1] = 0
    args[#args + 1] = members[i]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
local expires
for _, key in ipairs({ KEYS[2], KEYS[3] }) do
  local left = redis.call('PTTL', key)
  if left > 0 and (expires == nil or left < expires) then
    expires = left
  end
end
if expires then
  redis.call('PEXPIRE', KEYS[1], expires)
else
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return #members
