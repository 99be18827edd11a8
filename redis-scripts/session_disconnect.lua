-- Forgets one socket of a session; when it was the session's last socket on any node, marks
-- the session offline. Deciding and writing in one step is what keeps presence right when
-- tabs of one user open and close at the same moment on different nodes.
--
-- KEYS[1]  session:{sessionID}   the session hash (fields userID, username, connected)
-- ARGV[1]  userID
-- ARGV[2]  username
-- ARGV[3]  the session's time to live, in seconds
-- ARGV[4]  the socket's presence field, "socket:{nodeID}:{socketID}"
-- ARGV[5]  the node's field prefix, "socket:{nodeID}:"
-- KEYS[2]  privmsg:node:{nodeID}:sockets, on a standalone Redis only: the node's index, where
-- ARGV[6]  the socketID ARGV[6] is removed in the same step. On a cluster the caller removes it
--          after this call (a field is never left without its index entry).
--
-- Returns 1 when the user went offline (the caller announces it), 2 when the user is still
-- online but no longer on this node, 0 otherwise. Forgetting a socket that is already
-- forgotten returns 0, so a departure is announced once however many times it is reported.
if KEYS[2] then
  redis.call('HDEL', KEYS[2], ARGV[6])
end
if redis.call('HDEL', KEYS[1], ARGV[4]) == 0 then
  return 0
end
local prefix = ARGV[5]
local others = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #prefix) == prefix then
    return 0
  elseif string.sub(field, 1, 7) == 'socket:' then
    others = others + 1
  end
end
if others > 0 then
  return 2
end
redis.call('HSET', KEYS[1], 'userID', ARGV[1], 'username', ARGV[2], 'connected', 'false')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
