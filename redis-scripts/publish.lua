-- Publishes one payload on channels, skipping those on which the publishing node would only
-- hear its own echo: the first ARGV[3] channels are ones it subscribes to itself, published
-- only when another client subscribes to them too (with one subscriber, that subscriber is the
-- publisher, which emitted to its own sockets already). Which channels those are was decided
-- by the node (src/routing/publisher); this script only counts. On a standalone Redis one call
-- takes every channel of a publication; on a Redis Cluster a channel lives on the master of
-- its slot, so a call takes one channel (the others are SPUBLISHed without a script).
--
-- KEYS     the channels (socket.io-user#{userID})
-- ARGV[1]  what to publish (the routing envelope)
-- ARGV[2]  the publishing command of this Redis, chosen at start: 'PUBLISH' on a standalone
--          Redis (PUBSUB NUMSUB counts its subscribers), 'SPUBLISH' on a cluster (sharded
--          pub/sub: PUBSUB SHARDNUMSUB)
-- ARGV[3]  how many of KEYS, from the first, are published only when another client
--          subscribes to them too; the rest are published in any case
--
-- An announcement is not stored, so a node that subscribes just after the count has nothing
-- to miss that it does not read from Redis when its socket arrives. (A message is: the message
-- script counts in the call that stores it, store_messages.lua, after its writes.)
--
-- Returns the number of channels published on.
local publish = ARGV[2]
local count = publish == 'SPUBLISH' and 'SHARDNUMSUB' or 'NUMSUB'
local unless_alone = tonumber(ARGV[3])
local published = 0
for k, channel in ipairs(KEYS) do
  if k > unless_alone or redis.call('PUBSUB', count, channel)[2] > 1 then
    redis.call(publish, channel, ARGV[1])
    published = published + 1
  end
end
return published
