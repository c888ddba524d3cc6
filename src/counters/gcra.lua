-- gcra: one request against a rate limit shared by every instance (see gcra() and
-- gcra_in_hash() in gcra_fn.lua, put in front of this script).
--
-- KEYS[1]  the limit's key for this client
-- ARGV[1]  emission interval, ms (period / count)
-- ARGV[2]  burst (count)
-- ARGV[3]  absent for a key of its own; else the field of the hash KEYS[1] that holds the
--          limit, and ARGV[4] the hash's expiry (seconds) should this make it
--
-- Returns 0 when allowed (and recorded), else the milliseconds to wait.
if ARGV[3] then
  return gcra_in_hash(KEYS[1], ARGV[3], tonumber(ARGV[1]), tonumber(ARGV[2]), redis_now(), ARGV[4])
end
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), redis_now())
