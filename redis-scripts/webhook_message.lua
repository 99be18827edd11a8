-- The message a webhook delivery is about, as its recipient's history holds it now, read when
-- the delivery is sent: a job carries the message as it was stored, and a message edited,
-- deleted or erased with its sender meanwhile must not reach the receiver as it was. Also
-- whether the recipient blocks the sender (a cluster leaves a withheld message's jobs queued
-- for a round trip before taking them back), in the same call: a delivery costs one round
-- trip here. Valid on Redis Cluster: the block list hashes to the history's slot
-- (keys::blocks).
--
-- KEYS[1]  messages:{userID}       the recipient's history
-- KEYS[2]  privmsg:blocks:{...}    the recipient's block list
-- ARGV[1]  the sender's userID
-- ARGV[2]  '1': check the block list; '0': not (a message to oneself)
-- ARGV[3]  the message's JSON, as queued with the delivery
-- ARGV[4]  the message's id, or the empty string (a legacy message has none)
--
-- Returns 2 when the recipient blocks the sender; 1 when the history holds the message as
-- queued; the entry's JSON when it holds the message edited (the same id and sender); 0 when
-- it holds neither (deleted, erased with its sender, or trimmed away).
local history, blocks = KEYS[1], KEYS[2]
local from, check_blocks, json, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if check_blocks == '1' and redis.call('SISMEMBER', blocks, from) == 1 then
  return 2
end
-- From the tail: a delivery is about a recent message, near the end of the history.
if redis.call('LPOS', history, json, 'RANK', -1) then
  return 1
end
if id == '' then
  return 0
end
-- An edit keeps the id: looked for from the tail, a chunk at a time, the plain find first so
-- that only a likely entry is decoded; the decoded id and sender confirm it (the id's text
-- could be in another message's content).
local chunk = 128
local stop = -1
while true do
  local entries = redis.call('LRANGE', history, stop - chunk + 1, stop)
  for i = #entries, 1, -1 do
    local entry = entries[i]
    if string.find(entry, id, 1, true) then
      local ok, message = pcall(cjson.decode, entry)
      if ok and type(message) == 'table' and message.id == id and message.from == from then
        return entry
      end
    end
  end
  if #entries < chunk then
    return 0
  end
  stop = stop - chunk
end
