-- quota_fn: taking a ballot's quotas as a function, put in front of the scripts that take
-- them (take_quota.lua, take_ballot.lua). Not a script by itself.
--
-- take_quota(day, total, ready, a, first) checks and takes every quota of one ballot in one
-- atomic step (all or nothing).
--
-- day         hash of the voter's day: field "_" = candidate-votes cast that day, field
--             <candidate id> = votes for that candidate that day
-- total       string: the voter's candidate-votes over the whole campaign
-- ready       the campaign's "rebuilt" marker: absent after Redis lost its data (or before
--             the first ballot), when the quotas must first be rebuilt from the ledger
-- a           the limits are ARGV[a + 1 .. a + 4]: per day, per candidate, per campaign (-1
--             for no limit), the day hash's expiry (seconds)
-- first       the ballot's candidate ids are ARGV[first ..] (distinct: the service refuses
--             a ballot that names one twice)
--
-- This runs for every ballot, in Redis's interpreter, where each table, string and call
-- costs: the candidates are read where they lie in ARGV, and the day's fields are written
-- with one HSET of the values read (the script is atomic, so that equals adding to them).
--
-- Returns {0, remaining_today} when taken; {1} daily quota exhausted; {2, candidate id} that
-- candidate's daily limit reached; {3} campaign quota exhausted; {4} not rebuilt yet.
-- Nothing changes unless 0.
local function take_quota(day, total, ready, a, first)
  if redis.call('EXISTS', ready) == 0 then
    return {4}
  end
  local last = #ARGV
  local n = last - first + 1
  -- The day's total and each candidate's votes, in one read.
  local used = redis.call('HMGET', day, '_', unpack(ARGV, first, last))
  local day_total = tonumber(used[1] or '0')
  local per_day = tonumber(ARGV[a + 1])
  if day_total + n > per_day then
    return {1}
  end
  local per_campaign = tonumber(ARGV[a + 3])
  if per_campaign >= 0 then
    local so_far = tonumber(redis.call('GET', total) or '0')
    if so_far + n > per_campaign then
      return {3}
    end
  end
  -- Numbers as strings: Redis formats a Lua number with a costly floating-point printf.
  local per_candidate = tonumber(ARGV[a + 2])
  local fields = { '_', string.format('%d', day_total + n) }
  for i = 1, n do
    local votes = tonumber(used[i + 1] or '0') + 1
    if votes > per_candidate then
      return {2, tonumber(ARGV[first + i - 1])}
    end
    fields[2 * i + 1] = ARGV[first + i - 1]
    fields[2 * i + 2] = string.format('%d', votes)
  end
  redis.call('HSET', day, unpack(fields))
  -- The day's first ballot makes the hash and gives it its expiry (a hash whose votes were
  -- all given back gets it again).
  if day_total == 0 then
    redis.call('EXPIRE', day, ARGV[a + 4])
  end
  redis.call('INCRBY', total, string.format('%d', n))
  return {0, per_day - day_total - n}
end
