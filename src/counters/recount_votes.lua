-- recount_votes: replaces a campaign's live counts with the ledger's, read in one snapshot
-- whose chain head was at seq S, plus every batch applied since that committed after S.
-- Batches commit in seq order under the chain head's lock, so a snapshot holds exactly the
-- batches whose last seq is at most S; those applied later are skipped by apply_votes.
--
-- KEYS[1]  the live counts hash
-- KEYS[2]  the seq of the snapshot the counts were last rebuilt from
-- KEYS[3]  sorted set of applied batches (as in apply_votes.lua)
-- ARGV[1]  S
-- ARGV[2]  how many applied batches are remembered at most
-- ARGV[3..] candidate id, votes, ... as the snapshot counted them
--
-- Returns 1 when rebuilt, 0 when counts from a newer snapshot are already there, -1 when
-- the set of applied batches may have lost some after S (read the ledger again).
local s = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '-1') >= s then
  return 0
end
local kept = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[3]) >= kept then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if tonumber(oldest[2]) > s then
    return -1
  end
end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. s, '+inf')) do
  local counts = string.sub(member, string.find(member, '|', 1, true) + 1)
  for id, n in string.gmatch(counts, '(%d+):(%-?%d+)') do
    redis.call('HINCRBY', KEYS[1], id, n)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', s)
redis.call('SET', KEYS[2], s)
return 1
