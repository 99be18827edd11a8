-- Saves a session as connected and records one of its sockets, in one step, so that a
-- concurrent session_disconnect.lua on another node sees either none or all of it.
--
-- KEYS[1]  session:{sessionID}   the session hash (fields userID, username, connected)
-- ARGV[1]  userID
-- ARGV[2]  username
-- ARGV[3]  the session's time to live, in seconds
-- ARGV[4]  the socket's presence field, "socket:{nodeID}:{socketID}" (an extension field:
--          the Node server reads only userID, username and connected)
-- KEYS[2]  privmsg:node:{nodeID}:sessions, on a standalone Redis only: the sessions the node
-- ARGV[5]  holds sockets of, where the sessionID ARGV[5] is added (its TTL restarted, ARGV[3])
--          in the same step, so that a sweep after the node's death finds every field it
--          wrote. On a cluster that set is on another slot: the caller adds to it first.
--
-- Returns the number of sockets the session has now.
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], 'userID', ARGV[1], 'username', ARGV[2], 'connected', 'true',
  ARGV[4], '1')
redis.call('EXPIRE', KEYS[1], ARGV[3])
local sockets = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 7) == 'socket:' then
    sockets = sockets + 1
  end
end
return sockets
