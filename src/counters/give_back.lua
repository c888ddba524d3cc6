-- give_back: returns the quotas a ballot took when its ledger commit failed.
--
-- KEYS[1]  the voter's day hash (as in take_quota.lua)
-- KEYS[2]  the voter's campaign total
-- ARGV[1..] the ballot's candidate ids
--
-- A key that is gone (Redis lost it, or the day's hash expired) has nothing to give back:
-- it is rebuilt from the ledger, which never held the ballot. Decrementing it would make a
-- negative count, and a day's hash with no expiry (take_quota.lua sets the expiry when the
-- day's first ballot makes the hash).
--
-- A day that holds only the voter's rate limit (`~rl`, made by a request the quotas did not
-- take, after Redis lost the day) has no quotas either: its total `_` is what says so.
--
-- Returns the number of candidates given back.
if redis.call('HEXISTS', KEYS[1], '_') == 1 then
  for i = 1, #ARGV do
    redis.call('HINCRBY', KEYS[1], ARGV[i], -1)
  end
  redis.call('HINCRBY', KEYS[1], '_', -#ARGV)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DECRBY', KEYS[2], #ARGV)
end
return #ARGV
