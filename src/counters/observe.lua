-- observe: records one ballot's risk signals and returns what they measure, in one step.
--
-- Sets: adds the member to each short-lived set (the voters seen on one device, address,
-- network, or casting one set of candidates) and returns how many distinct members each
-- holds. A set expires its window after its first member, so counts are per window.
--
-- Pace: counts the ballot's candidates in this minute's bucket (field per candidate, `*` for
-- all votes) and returns, per candidate, its votes and all votes in each of the buckets from
-- this minute back, so the caller can compare its recent share with its share before.
--
-- KEYS[1..n]      the sets
-- KEYS[n+1..]     the pace buckets, this minute first (none without pace)
-- ARGV[1]         the member
-- ARGV[2]         n, the number of sets
-- ARGV[3..n+2]    each set's window, seconds
-- ARGV[n+3]       the buckets' lifetime, seconds
-- ARGV[n+4..]     the ballot's candidates
--
-- Returns { sizes..., then per candidate per bucket: its votes, all votes }.
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local key = KEYS[i]
  redis.call('SADD', key, ARGV[1])
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, tonumber(ARGV[2 + i]))
  end
  out[#out + 1] = redis.call('SCARD', key)
end
if #KEYS > n then
  local now = KEYS[n + 1]
  local candidates = {}
  for i = n + 4, #ARGV do
    candidates[#candidates + 1] = ARGV[i]
    redis.call('HINCRBY', now, ARGV[i], 1)
  end
  redis.call('HINCRBY', now, '*', #candidates)
  redis.call('EXPIRE', now, tonumber(ARGV[n + 3]))
  for _, c in ipairs(candidates) do
    for k = n + 1, #KEYS do
      local got = redis.call('HMGET', KEYS[k], c, '*')
      out[#out + 1] = tonumber(got[1] or '0')
      out[#out + 1] = tonumber(got[2] or '0')
    end
  end
end
return out
