-- Publishes one announcement (a contact's presence, in the contacts scope) on the channels of
-- the users it is for, skipping each channel on which the publishing node would only hear its
-- own echo. Standalone Redis only (on a cluster the channels are sharded over the masters:
-- spublish_unless_echo.lua applies the same rule there, one channel per call).
--
-- ARGV[1]  what to publish (the routing envelope)
-- ARGV[2]  one character per channel: '1' where the publishing node itself subscribes (it
--          emitted to its own sockets already), '0' elsewhere
-- ARGV[3..] the channels
--
-- A channel marked '1' is published on only when another client subscribes to it too (a tab
-- of that user on another node, an operator's SUBSCRIBE): with one subscriber, that subscriber
-- is the publisher. The same rule as for messages (store_messages.lua), without their atomic
-- write: an announcement is not stored, so there is nothing a late subscriber could miss that
-- it does not read from Redis when it connects.
--
-- Returns the number of channels published on.
local payload, held = ARGV[1], ARGV[2]
local published = 0
for c = 3, #ARGV do
  local channel = ARGV[c]
  if string.sub(held, c - 2, c - 2) ~= '1' or redis.call('PUBSUB', 'NUMSUB', channel)[2] > 1 then
    redis.call('PUBLISH', channel, payload)
    published = published + 1
  end
end
return published
