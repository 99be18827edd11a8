-- Saves a session as connected and records one of its sockets, in one step, so that a
-- concurrent session_disconnect.lua on another node sees either none or all of it.
--
-- KEYS[1]  session:{sessionID}   the session hash (fields userID, username, connected)
-- ARGV[1]  userID
-- ARGV[2]  username
-- ARGV[3]  the session's time to live, in seconds
-- ARGV[4]  the socket's presence field, "socket:{nodeID}:{socketID}" (an extension field:
--          the Node server reads only userID, username and connected)
-- KEYS[2]  privmsg:node:{nodeID}:sockets, on a standalone Redis only: the node's index of its
-- ARGV[5]  sockets (socketID -> sessionID), where ARGV[5] (the socketID) is set to ARGV[6]
-- ARGV[6]  (the sessionID) in the same step, its TTL restarted (ARGV[3]), so that a sweep
--          after the node's death finds every field it wrote. On a cluster that hash is on
--          another slot: the caller sets it first.
--
-- Returns 1 when the session was not connected before (the user came online), 0 otherwise.
if KEYS[2] then
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
local was = redis.call('HGET', KEYS[1], 'connected')
redis.call('HSET', KEYS[1], 'userID', ARGV[1], 'username', ARGV[2], 'connected', 'true',
  ARGV[4], '1')
redis.call('EXPIRE', KEYS[1], ARGV[3])
if was == 'true' then
  return 0
end
return 1
