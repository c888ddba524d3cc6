-- gcra: one request against a rate limit shared by every instance (see gcra() in
-- gcra_fn.lua, put in front of this script).
--
-- KEYS[1]  the limit's key for this client
-- ARGV[1]  emission interval, ms (period / count)
-- ARGV[2]  burst (count)
--
-- Returns 0 when allowed (and recorded), else the milliseconds to wait.
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), redis_now())
