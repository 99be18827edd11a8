-- Claims the webhook deliveries that are due, for one node: each is leased to it by moving its
-- score to the lease's end, so no other node takes it while it is being sent, and any node
-- takes it once the lease ends (the node crashed, or stopped mid-way). One key: valid on a
-- Redis Cluster. Also reads the queue's size and its most overdue entry, for the gauges.
--
-- KEYS[1]  privmsg:webhooks (a sorted set: member the job, score the ms it is due)
-- ARGV[1]  now, in ms since the epoch
-- ARGV[2]  the end of the lease, in ms since the epoch
-- ARGV[3]  the most to claim (0: only read the gauges)
--
-- Returns { the queue's size, the lowest score ('' when empty), { the claimed jobs } }.
local claimed = {}
if tonumber(ARGV[3]) > 0 then
  claimed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
  for _, job in ipairs(claimed) do
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], job)
  end
end
local lowest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return { redis.call('ZCARD', KEYS[1]), lowest[2] or '', claimed }
