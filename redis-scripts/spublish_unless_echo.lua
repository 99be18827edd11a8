-- Publishes one payload on one sharded channel that the publishing node subscribes to itself,
-- unless that node is the channel's only subscriber. Redis Cluster only: a script runs on one
-- slot, so there is one call per channel, each sent to the master that owns its slot (the
-- channel is the call's key); the standalone scripts decide for every channel of a message in
-- the call that stores it (store_messages.lua).
--
-- KEYS[1]  the channel (socket.io-user#{userID})
-- ARGV[1]  what to publish (the routing envelope)
--
-- With one subscriber, that subscriber is the publishing node: it delivered to its own sockets
-- already, and would only receive its echo. Counted after the message was appended to the
-- histories (the caller runs this once every write is done), so a node that subscribes after
-- the count reads the message in the history it loads after subscribing.
--
-- Returns 1 when published, 0 when skipped.
if redis.call('PUBSUB', 'SHARDNUMSUB', KEYS[1])[2] > 1 then
  redis.call('SPUBLISH', KEYS[1], ARGV[1])
  return 1
end
return 0
