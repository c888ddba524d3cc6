-- give_back: returns the quotas a ballot took when its ledger commit failed.
--
-- KEYS[1]  the voter's day hash (as in take_quota.lua)
-- KEYS[2]  the voter's campaign total
-- ARGV[1..] the ballot's candidate ids
--
-- Returns the number of candidates given back.
for i = 1, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], -1)
end
redis.call('HINCRBY', KEYS[1], '_', -#ARGV)
redis.call('DECRBY', KEYS[2], #ARGV)
return #ARGV
