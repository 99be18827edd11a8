-- Adds a user to another's block list (`block user`), unless the list is full.
--
-- KEYS[1]  privmsg:blocks:{...}   the blocker's block list (a set of userIDs), see keys::blocks
-- ARGV[1]  the userID to block
-- ARGV[2]  the most userIDs a list may hold
--
-- Returns the whole list (the ack's `blocked`), or false when it is full and the userID is
-- not in it already. No expiry: a block lasts until it is lifted.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0
    and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return false
end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
