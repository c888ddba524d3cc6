-- distinct: adds a member to a short-lived set and returns how many distinct members it
-- holds (voters seen on one device, say). The set expires `ttl` after its first member, so
-- counts are per window.
--
-- KEYS[1]  the set
-- ARGV[1]  the member
-- ARGV[2]  the window, seconds
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return redis.call('SCARD', KEYS[1])
