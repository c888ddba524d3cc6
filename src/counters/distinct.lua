-- distinct: adds a member to each of several short-lived sets and returns how many distinct
-- members each holds (the voters seen on one device, one address, one network). A set
-- expires `window` after its first member, so counts are per window. One call for all of a
-- ballot's signals; the keys carry the campaign's hash tag, so they share a shard.
--
-- KEYS[1..] the sets
-- ARGV[1]  the member
-- ARGV[2]  the window, seconds
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SADD', key, ARGV[1])
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, tonumber(ARGV[2]))
  end
  counts[i] = redis.call('SCARD', key)
end
return counts
