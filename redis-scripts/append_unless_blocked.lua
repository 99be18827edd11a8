-- Appends a message to its recipient's history unless the recipient blocked the sender: the
-- block check of a message on a Redis Cluster, in the write that history needed anyway (the
-- block list hashes to the history's slot, see keys::blocks). The trim and expiry follow in
-- the same pipeline (store/messages/cluster.rs).
--
-- KEYS[1]  messages:{userID}       the recipient's history
-- KEYS[2]  privmsg:blocks:{...}    the recipient's block list
-- ARGV[1]  the message's JSON
-- ARGV[2]  the sender's userID
--
-- Returns the history's length, or 0 when the sender is blocked (nothing written).
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then
  return 0
end
return redis.call('RPUSH', KEYS[1], ARGV[1])
