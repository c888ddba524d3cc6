-- quota_fn: taking a ballot's quotas as a function, put in front of the scripts that take
-- them (take_quota.lua, take_ballot.lua). Not a script by itself.
--
-- take_quota(day, total, ready, a, first, used, tat) checks and takes every quota of one
-- ballot in one atomic step (all or nothing).
--
-- day         hash of the voter's day: field "_" = candidate-votes cast that day, field
--             <candidate id> = votes for that candidate that day, field "~rl" = the TAT of
--             the voter's ballot limit (gcra_fn.lua), which lives and ends with the day
-- total       string: the voter's candidate-votes over the whole campaign
-- ready       the campaign's "rebuilt" marker: absent after Redis lost its data (or before
--             the first ballot), when the quotas must first be rebuilt from the ledger
-- a           the limits are ARGV[a + 1 .. a + 4]: per day, per candidate, per campaign (-1
--             for no limit), the day hash's expiry (seconds)
-- first       the ballot's candidate ids are ARGV[first ..] (distinct: the service refuses
--             a ballot that names one twice)
-- used        nil, or what the caller read of the day: HMGET day "~rl" "_" <candidates>
-- tat         nil, or the voter limit's new TAT (a string), written to the day whatever the
--             quotas answer: the limit took its request
--
-- This runs for every ballot, in Redis's interpreter, where each table, string and call
-- costs: the candidates are read where they lie in ARGV, and the day's fields are written
-- with one HSET of the values read (the script is atomic, so that equals adding to them),
-- the limit's TAT with them.
--
-- Returns {0, remaining_today} when taken; {1} daily quota exhausted; {2, candidate id} that
-- candidate's daily limit reached; {3} campaign quota exhausted; {4} not rebuilt yet.
-- No quota changes unless 0.
-- A refusal still writes the limit's TAT (if any); a day with neither a total nor a TAT is
-- made now, and gets its expiry (ARGV[a + 4]).
local function refuse(answer, day, a, used, tat)
  if tat then
    redis.call('HSET', day, '~rl', tat)
    if not used[1] and not used[2] then
      redis.call('EXPIRE', day, ARGV[a + 4])
    end
  end
  return answer
end

local function take_quota(day, total, ready, a, first, used, tat)
  local last = #ARGV
  local n = last - first + 1
  -- The limit's TAT, the day's total and each candidate's votes, in one read.
  used = used or redis.call('HMGET', day, '~rl', '_', unpack(ARGV, first, last))
  local day_total = tonumber(used[2] or '0')
  if redis.call('EXISTS', ready) == 0 then
    return refuse({4}, day, a, used, tat)
  end
  local per_day = tonumber(ARGV[a + 1])
  if day_total + n > per_day then
    return refuse({1}, day, a, used, tat)
  end
  local per_campaign = tonumber(ARGV[a + 3])
  if per_campaign >= 0 then
    local so_far = tonumber(redis.call('GET', total) or '0')
    if so_far + n > per_campaign then
      return refuse({3}, day, a, used, tat)
    end
  end
  -- Numbers as strings: Redis formats a Lua number with a costly floating-point printf.
  local per_candidate = tonumber(ARGV[a + 2])
  local fields = { '_', string.format('%d', day_total + n) }
  for i = 1, n do
    local votes = tonumber(used[i + 2] or '0') + 1
    if votes > per_candidate then
      return refuse({2, tonumber(ARGV[first + i - 1])}, day, a, used, tat)
    end
    fields[2 * i + 1] = ARGV[first + i - 1]
    fields[2 * i + 2] = string.format('%d', votes)
  end
  if tat then
    fields[2 * n + 3] = '~rl'
    fields[2 * n + 4] = tat
  end
  redis.call('HSET', day, unpack(fields))
  -- The day's first ballot makes the hash and gives it its expiry (a hash whose votes were
  -- all given back, or that held only the limit, gets it again).
  if day_total == 0 then
    redis.call('EXPIRE', day, ARGV[a + 4])
  end
  redis.call('INCRBY', total, string.format('%d', n))
  return {0, per_day - day_total - n}
end
