-- gcra: one request against a rate limit shared by every instance (the generic cell rate
-- algorithm, as governor runs it in process). The key holds the theoretical arrival time
-- (TAT) in milliseconds of Redis's clock, so the instances' clocks never matter.
--
-- KEYS[1]  the limit's key for this client
-- ARGV[1]  emission interval, ms (period / count)
-- ARGV[2]  burst (count)
--
-- Returns 0 when allowed (and recorded), else the milliseconds to wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local allow_at = tat + interval - burst * interval
if allow_at > now then
  return allow_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return 0
