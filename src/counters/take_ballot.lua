-- take_ballot: all that the counter store does for one ballot, in one step and one round
-- trip: the shared rate limits (the client's address, then the voter), then the ballot's
-- risk signals, then its quotas. For a ballot that nothing can refuse between its signals
-- and its quotas (its campaign asks for no proof of work, so its flags cannot ask for a
-- harder one). The same as gcra.lua for each limit, then (when they allow) observe.lua,
-- then take_quota.lua: gcra_fn.lua, quota_fn.lua and observe_fn.lua are put in front of it.
--
-- Redis Cluster runs a script on one shard, so every key here carries the campaign's hash
-- tag: the limits are counted per campaign for that reason (`{c<id>}~rl:…`).
--
-- KEYS[1..3]      take_quota.lua's keys
-- KEYS[4..3+L]    the L rate limits' keys, in the order they are checked
-- KEYS[4+L..]     observe.lua's keys (none: no signals)
-- ARGV[1..4]      take_quota.lua's first four arguments
-- ARGV[5]         L, how many rate limits (0 for none)
-- ARGV[6..5+2L]   each limit's emission interval (ms) and burst
-- ARGV[6+2L..]    observe.lua's arguments (its candidates are the ballot's)
--
-- Returns { 0, take_quota()'s answer in two values (the second 0 when it has none),
-- observe()'s answer... } (flat: Redis makes a nested reply at some cost); { ms to wait }
-- when a limit refuses (the limits before it took their request; nothing else done); -1
-- (nothing done) when every pace bucket must be named.
local limits = tonumber(ARGV[5])
local o = observe_args(3 + limits, 5 + 2 * limits)
local sums = o.pace and read_pace(o.pace)
if o.pace and not sums then
  return -1
end
if limits > 0 then
  local now = redis_now()
  local tats = redis.call('MGET', unpack(KEYS, 4, 3 + limits))
  for i = 1, limits do
    local wait = gcra_at(KEYS[3 + i], tats[i], tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i]), now)
    if wait > 0 then
      return { wait }
    end
  end
end
local reply = { 0, 0, 0 }
observe(o, sums, reply, 3)
local quota = take_quota(KEYS[1], KEYS[2], KEYS[3], 0, o.first)
reply[2], reply[3] = quota[1], quota[2] or 0
return reply
