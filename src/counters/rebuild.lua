-- rebuild: replaces a campaign's quotas with what the ledger says, unless they are already
-- built (the live counts have their own script, recount_votes.lua). Atomic, and a no-op
-- when the "ready" marker exists, so a rebuild that arrives late (its caller timed out) or
-- twice can never wipe quotas taken since the first one.
--
-- KEYS[1]  the campaign's "ready" marker
-- ARGV[1]  JSON: {"del": [keys to drop],
--                 "days": {day key: {candidate: n, "_": total}}, "totals": {total key: n},
--                 "day_ttl": seconds}
--          (all keys carry the campaign's hash tag, so they live on KEYS[1]'s shard)
-- ARGV[2]  1 to rebuild even when ready (`minyi reconcile`), else 0
--
-- Returns 1 when rebuilt, 0 when the campaign was already ready.
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local s = cjson.decode(ARGV[1])
for _, k in ipairs(s.del) do
  redis.call('DEL', k)
end
for key, fields in pairs(s.days) do
  redis.call('DEL', key)
  for field, n in pairs(fields) do
    redis.call('HSET', key, field, n)
  end
  redis.call('EXPIRE', key, s.day_ttl)
end
for key, n in pairs(s.totals) do
  redis.call('SET', key, n)
end
redis.call('SET', KEYS[1], 1)
return 1
