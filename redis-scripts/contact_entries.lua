-- A user's contacts with what `users` lists of each, in one step instead of three round trips
-- (SMEMBERS, then a GET of each contact's privmsg:user: key, then an HMGET of each session),
-- at every connect in the contacts scope. Standalone Redis only: the keys it reads are named
-- by the set's members and by the user keys, so they cannot be declared; on a cluster the
-- caller takes the three steps.
--
-- KEYS[1]  privmsg:contacts:{userID}
-- ARGV[1]  the set's time to live, in seconds, restarted (its owner is connecting)
-- ARGV[2]  the prefix of user keys, "privmsg:user:"
-- ARGV[3]  the prefix of session keys, "session:"
-- ARGV[4]  the most contacts looked up here: a larger set would hold Redis for every other
--          client (two reads per contact), so then nothing is read and the caller, told by
--          a nil answer, takes the pipelined steps, which other clients' commands interleave
--
-- Returns, for each member, {userID, username, connected}, username and connected nil when
-- the member's user is gone (no key, no session, or a key naming another user's session).
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) > tonumber(ARGV[4]) then
  return false
end
local rows = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local row = {user, false, false}
  local session = redis.call('GET', ARGV[2] .. user)
  if session then
    local fields = redis.call('HMGET', ARGV[3] .. session, 'userID', 'username', 'connected')
    if fields[1] == user then
      row = {user, fields[2] or '', fields[3] or ''}
    end
  end
  rows[#rows + 1] = row
end
return rows
