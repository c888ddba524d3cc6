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

-- gcra_next(tat, interval, burst, now): the step alone, from the TAT read (false for none):
-- 0 and the new TAT (a string) when allowed, else the milliseconds to wait. Numbers as
-- strings: Redis formats a Lua number with a costly floating-point printf.
local function gcra_next(tat, interval, burst, now)
  tat = tonumber(tat or '0')
  if tat < now then
    tat = now
  end
  local allow_at = tat + interval - burst * interval
  if allow_at > now then
    return allow_at - now
  end
  return 0, string.format('%d', tat + interval)
end

-- gcra_at(key, tat, ...): gcra() with the key's value already read (`tat`, false for none),
-- so that a script with several limits reads them all in one MGET.
local function gcra_at(key, tat, interval, burst, now)
  local wait, new_tat = gcra_next(tat, interval, burst, now)
  if wait == 0 then
    -- The key expires at its new TAT: past it, its absence says the same (a TAT before
    -- now counts as now), and one string serves as both.
    redis.call('SET', key, new_tat, 'PXAT', new_tat)
  end
  return wait
end

-- gcra_in_hash(key, field, interval, burst, now, ttl): a limit whose TAT is a field of a
-- hash with an expiry of its own (a voter's ballot limit, in the voter's day: see
-- quota_fn.lua); a hash this makes gets `ttl` seconds.
local function gcra_in_hash(key, field, interval, burst, now, ttl)
  local wait, new_tat = gcra_next(redis.call('HGET', key, field), interval, burst, now)
  if wait == 0 and redis.call('HSET', key, field, new_tat) == 1
      and redis.call('HLEN', key) == 1 then
    redis.call('EXPIRE', key, ttl)
  end
  return wait
end

local function gcra(key, interval, burst, now)
  return gcra_at(key, redis.call('GET', key), interval, burst, now)
end
