-- gcra_fn: a shared rate limit as a function, put in front of the scripts that check one
-- (gcra.lua, take_ballot.lua). Not a script by itself.
--
-- gcra(key, interval, burst, now): one request against a rate limit shared by every
-- instance (the generic cell rate algorithm, as governor runs it in process). The key holds
-- the theoretical arrival time (TAT) in milliseconds of Redis's clock, so the instances'
-- clocks never matter. `interval` is the emission interval in ms (period / count), `burst`
-- the count, `now` what redis_now() read (once for all of a script's limits).
--
-- Returns 0 when allowed (and recorded), else the milliseconds to wait (nothing recorded).
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- gcra_at(key, tat, ...): the same with the key's value already read (`tat`, false for none),
-- so that a script with several limits reads them all in one MGET.
local function gcra_at(key, tat, interval, burst, now)
  tat = tonumber(tat or '0')
  if tat < now then
    tat = now
  end
  local allow_at = tat + interval - burst * interval
  if allow_at > now then
    return allow_at - now
  end
  -- The key expires at its new TAT: past it, its absence says the same (a TAT before now
  -- counts as now), and one string serves as both. Numbers as strings: Redis formats a Lua
  -- number with a costly floating-point printf.
  local new_tat = string.format('%d', tat + interval)
  redis.call('SET', key, new_tat, 'PXAT', new_tat)
  return 0
end

local function gcra(key, interval, burst, now)
  return gcra_at(key, redis.call('GET', key), interval, burst, now)
end
