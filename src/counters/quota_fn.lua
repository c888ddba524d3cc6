-- quota_fn: taking a ballot's quotas as a function, put in front of the scripts that take
-- them (take_quota.lua, take_ballot.lua). Not a script by itself.
--
-- take_quota(day, total, ready, limits, candidates) checks and takes every quota of one
-- ballot in one atomic step (all or nothing).
--
-- day         hash of the voter's day: field "_" = candidate-votes cast that day, field
--             <candidate id> = votes for that candidate that day
-- total       string: the voter's candidate-votes over the whole campaign
-- ready       the campaign's "rebuilt" marker: absent after Redis lost its data (or before
--             the first ballot), when the quotas must first be rebuilt from the ledger
-- limits      { per_day, per_candidate, per_campaign (-1 for no limit), day_ttl (seconds,
--             the day hash's expiry, as a string) }
-- candidates  the ballot's candidate ids
--
-- Returns {0, remaining_today} when taken; {1} daily quota exhausted; {2, candidate id} that
-- candidate's daily limit reached; {3} campaign quota exhausted; {4} not rebuilt yet.
-- Nothing changes unless 0.
local function take_quota(day, total, ready, limits, candidates)
  if redis.call('EXISTS', ready) == 0 then
    return {4}
  end
  local n = #candidates
  -- The day's total and each candidate's votes, in one read.
  local used = redis.call('HMGET', day, '_', unpack(candidates))
  local day_total = tonumber(used[1] or '0')
  if day_total + n > limits.per_day then
    return {1}
  end
  if limits.per_campaign >= 0 then
    local so_far = tonumber(redis.call('GET', total) or '0')
    if so_far + n > limits.per_campaign then
      return {3}
    end
  end
  for i, c in ipairs(candidates) do
    if tonumber(used[i + 1] or '0') + 1 > limits.per_candidate then
      return {2, tonumber(c)}
    end
  end
  -- Numbers as strings: Redis formats a Lua number with a costly floating-point printf.
  local votes = string.format('%d', n)
  for _, c in ipairs(candidates) do
    redis.call('HINCRBY', day, c, '1')
  end
  -- The day's hash is made by the day's first ballot, which gives it its expiry (a hash
  -- whose votes were all given back keeps the expiry it had).
  if redis.call('HINCRBY', day, '_', votes) == n then
    redis.call('EXPIRE', day, limits.day_ttl)
  end
  redis.call('INCRBY', total, votes)
  return {0, limits.per_day - day_total - n}
end

-- The limits as ARGV[a + 1 .. a + 4] give them (see take_quota.lua).
local function quota_limits(a)
  return {
    per_day = tonumber(ARGV[a + 1]),
    per_candidate = tonumber(ARGV[a + 2]),
    per_campaign = tonumber(ARGV[a + 3]),
    day_ttl = ARGV[a + 4],
  }
end
