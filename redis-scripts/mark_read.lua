-- Moves a user's read mark of one conversation forward (never backwards): `messages read`.
--
-- KEYS[1]  privmsg:read:{userID}   the user's read marks (a hash: peer userID -> messageID)
-- ARGV[1]  the peer's userID
-- ARGV[2]  the id of the newest message read (a UUIDv7: ids compare as strings, by time)
-- ARGV[3]  the marks' time to live, in seconds
--
-- Returns the mark as it is now: ARGV[2], or the newer mark that was there.
local current = redis.call('HGET', KEYS[1], ARGV[1])
local mark = ARGV[2]
if current and current >= mark then
  mark = current
else
  redis.call('HSET', KEYS[1], ARGV[1], mark)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return mark
