-- count_pace: counts one committed batch's votes for the candidates' pace (see observe_fn.lua:
-- the minute buckets and the sums of the two windows, which the ballots only read).
--
-- KEYS[1]   the campaign's pace sums
-- KEYS[2..] the bucket of each minute the batch has votes in
-- ARGV[1]   a bucket's lifetime from its first vote, seconds
-- ARGV[2]   how many minutes, this one included, make the recent window
-- ARGV[3]   how many minutes both windows span
-- ARGV[4]   1 to answer every field of the sums, 0 for the totals and the batch's candidates'
-- then for each bucket, in KEYS order: its minute, k = how many candidates, and k pairs of
-- candidate id, votes
--
-- A minute inside the sums' windows is added to them too, so that they keep equal to the
-- buckets' totals; a minute after the sums' is left to the first ballot of that minute,
-- which adds the buckets up afresh.
--
-- Answers the sums as this batch left them, for the instance's copy (pace_copy.rs): field,
-- value, field, value... with `@` (their minute) and `#` (their version, raised by every
-- batch that finds them); every field, or `@`, `#`, the totals and the fields of the batch's
-- candidates. Nothing (an empty answer) when there are no sums, or too many fields to
-- send back whole (the copy is then dropped and ballots read in Redis).
local MAX_FIELDS = 4002
local at = tonumber(redis.call('HGET', KEYS[1], '@') or '-1')
local recent, span = tonumber(ARGV[2]), tonumber(ARGV[3])
local a = 5
local seen = {}
for i = 2, #KEYS do
  local minute, k = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local age = at - minute
  local window = nil
  if age >= 0 and age < span then
    window = (age < recent) and 'r:' or 'b:'
  end
  local all = 0
  for _ = 1, k do
    local c, n = ARGV[a], ARGV[a + 1]
    a = a + 2
    seen[c] = true
    redis.call('HINCRBY', KEYS[i], c, n)
    if window then
      redis.call('HINCRBY', KEYS[1], window .. c, n)
    end
    all = all + tonumber(n)
  end
  local total = string.format('%d', all)
  -- A bucket lives `ttl` from its first vote: longer than anyone reads it.
  if redis.call('HINCRBY', KEYS[i], '*', total) == all then
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  end
  if window then
    redis.call('HINCRBY', KEYS[1], window .. '*', total)
  end
end
if at < 0 then
  return {}
end
-- The sums exist: the version is a field of theirs, sharing their expiry.
redis.call('HINCRBY', KEYS[1], '#', 1)
if ARGV[4] == '1' then
  if redis.call('HLEN', KEYS[1]) > MAX_FIELDS then
    return {}
  end
  return redis.call('HGETALL', KEYS[1])
end
local fields = { '@', '#', 'r:*', 'b:*' }
for c in pairs(seen) do
  fields[#fields + 1] = 'r:' .. c
  fields[#fields + 1] = 'b:' .. c
end
if #fields > MAX_FIELDS then
  return {}
end
local values = redis.call('HMGET', KEYS[1], unpack(fields))
local out = {}
for i = 1, #fields do
  out[2 * i - 1] = fields[i]
  out[2 * i] = values[i] or '0'
end
return out
