-- Marks that a user's history holds no message of a conversation older than the
-- conversation's index: later pages that reach the index's start need not read that history.
-- Only on an index that exists (an absent one has no TTL to keep the mark from living forever).
--
-- KEYS[1]  privmsg:conversation:{a}:{b}  the conversation's index
-- ARGV[1]  the mark, "!{userID}"
--
-- Returns 1 when the mark was added, 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('ZADD', KEYS[1], 0, ARGV[1])
