-- take_quota: checks and takes every quota of one ballot in one atomic step (all or nothing).
--
-- KEYS[1]  hash of the voter's day: field "_" = candidate-votes cast that day, field
--          <candidate id> = votes for that candidate that day
-- KEYS[2]  string: the voter's candidate-votes over the whole campaign
-- KEYS[3]  the campaign's "rebuilt" marker: absent after Redis lost its data (or before the
--          first ballot), when the quotas must first be rebuilt from the ledger
-- ARGV[1]  votes_per_day
-- ARGV[2]  votes_per_candidate_per_day
-- ARGV[3]  votes_per_campaign, or -1 for no limit
-- ARGV[4]  expiry of the day hash, seconds
-- ARGV[5..] the ballot's candidate ids
--
-- Returns {0, remaining_today} when taken; {1} daily quota exhausted; {2, candidate id} that
-- candidate's daily limit reached; {3} campaign quota exhausted; {4} not rebuilt yet.
-- Nothing changes unless 0.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {4}
end
local n = #ARGV - 4
local day_total = tonumber(redis.call('HGET', KEYS[1], '_') or '0')
if day_total + n > tonumber(ARGV[1]) then
  return {1}
end
local per_campaign = tonumber(ARGV[3])
if per_campaign >= 0 then
  local total = tonumber(redis.call('GET', KEYS[2]) or '0')
  if total + n > per_campaign then
    return {3}
  end
end
local per_candidate = tonumber(ARGV[2])
for i = 5, #ARGV do
  local used = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if used + 1 > per_candidate then
    return {2, tonumber(ARGV[i])}
  end
end
for i = 5, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
redis.call('HINCRBY', KEYS[1], '_', n)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('INCRBY', KEYS[2], n)
return {0, tonumber(ARGV[1]) - day_total - n}
