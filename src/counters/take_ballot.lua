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
-- The voter's limit can be kept in the voter's day (field `~rl` of KEYS[1], see
-- quota_fn.lua): then the quotas' one read and one write of the day serve it too, with no
-- key of its own to read, write and expire.
--
-- KEYS[1..3]      take_quota.lua's keys
-- KEYS[4..3+L]    the L rate limits with a key of their own, in the order they are checked
-- KEYS[4+L..]     observe.lua's keys (none: no signals)
-- ARGV[1..4]      take_quota.lua's first four arguments
-- ARGV[5]         L, how many rate limits with a key of their own (0 for none)
-- ARGV[6..5+2L]   each limit's emission interval (ms) and burst
-- ARGV[6+2L]      1 when the voter's limit is kept in its day (checked after the L others),
--                 then its emission interval and burst; else 0
-- then            observe.lua's arguments (its candidates are the ballot's)
--
-- Returns { 0, take_quota()'s answer in two values (the second 0 when it has none),
-- observe()'s answer... } (flat: Redis makes a nested reply at some cost); { ms to wait }
-- when a limit refuses (the limits before it took their request; nothing else done); -1
-- (nothing done) when every pace bucket must be named.
local limits = tonumber(ARGV[5])
local v = 6 + 2 * limits
local in_day = ARGV[v] == '1'
local o = observe_args(3 + limits, in_day and v + 2 or v)
local sums = o.pace and read_pace(o.pace)
if o.pace and not sums then
  return -1
end
local used, tat
if limits > 0 or in_day then
  local now = redis_now()
  if limits > 0 then
    local tats = redis.call('MGET', unpack(KEYS, 4, 3 + limits))
    for i = 1, limits do
      local wait = gcra_at(KEYS[3 + i], tats[i], tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i]), now)
      if wait > 0 then
        return { wait }
      end
    end
  end
  if in_day then
    used = redis.call('HMGET', KEYS[1], '~rl', '_', unpack(ARGV, o.first, #ARGV))
    local wait
    wait, tat = gcra_next(used[1], tonumber(ARGV[v + 1]), tonumber(ARGV[v + 2]), now)
    if wait > 0 then
      return { wait }
    end
  end
end
local reply = { 0, 0, 0 }
observe(o, sums, reply, 3)
local quota = take_quota(KEYS[1], KEYS[2], KEYS[3], 0, o.first, used, tat)
reply[2], reply[3] = quota[1], quota[2] or 0
return reply
