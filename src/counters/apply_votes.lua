-- apply_votes: adds one committed batch's votes to a campaign's live counts, unless the
-- counts were rebuilt from a ledger snapshot that already held the batch.
--
-- KEYS[1]  the live counts hash (candidate id -> votes)
-- KEYS[2]  the seq of the snapshot the counts were last rebuilt from
-- KEYS[3]  sorted set of applied batches: score = last seq, member = "<seq>|<id>:<n>,..."
-- ARGV[1]  the batch's last seq
-- ARGV[2]  how many applied batches to remember
-- ARGV[3..] candidate id, votes, candidate id, votes, ...
--
-- Returns 1 when added, 0 when the rebuilt counts already held the batch.
local last = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '-1') >= last then
  return 0
end
local parts = {}
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  parts[#parts + 1] = ARGV[i] .. ':' .. ARGV[i + 1]
end
redis.call('ZADD', KEYS[3], last, ARGV[1] .. '|' .. table.concat(parts, ','))
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1 - tonumber(ARGV[2]))
return 1
