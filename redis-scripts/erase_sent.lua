-- Erasure (the server API's DELETE /api/users/{userID}): removes every message a user SENT
-- from one key, a recipient's history or a conversation's index, and the user's own mark of
-- that index. One key per call, so it runs on a Redis Cluster too (every key on its own
-- slot); atomic per key, so a message appended meanwhile is either seen and removed or
-- appended after. Idempotent: a second run finds nothing to remove.
--
-- KEYS[1]  messages:{peer} (a list of JSON messages) or privmsg:conversation:{a}:{b}
--          (a sorted set, scores 0, members "<messageID> <JSON>" and marks "!{userID}")
-- ARGV[1]  'list' or 'index'
-- ARGV[2]  the erased userID, as stored (decoded JSON, compared whole: no pattern, so any
--          character an identity provider puts in a userID is safe)
-- ARGV[3]  the erased user's mark of the index, "!{userID}" (index only)
--
-- Entries are decoded with cjson (erasure is rare; a history holds at most HISTORY_CAP
-- entries); an entry that does not decode is not a message of the user's and stays.
--
-- Returns how many entries it removed.
local key, kind, user = KEYS[1], ARGV[1], ARGV[2]
local function sent_by_user(json)
  local ok, message = pcall(cjson.decode, json)
  return ok and type(message) == 'table' and message.from == user
end
local removed = 0
if kind == 'list' then
  local seen = {}
  for _, entry in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if not seen[entry] and sent_by_user(entry) then
      seen[entry] = true
      removed = removed + redis.call('LREM', key, 0, entry)
    end
  end
else
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local space = string.find(member, ' ', 1, true)
    if space and sent_by_user(string.sub(member, space + 1)) then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
  removed = removed + redis.call('ZREM', key, ARGV[3])
end
return removed
