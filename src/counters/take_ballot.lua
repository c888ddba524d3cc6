-- take_ballot: all that the counter store does for one ballot, in one step and one round
-- trip: the voter's shared rate limit, then the ballot's risk signals, then its quotas. For
-- a ballot that nothing can refuse between its signals and its quotas (its campaign asks for
-- no proof of work, so its flags cannot ask for a harder one). The same as gcra.lua, then
-- (when it allows) observe.lua, then take_quota.lua: gcra_fn.lua, quota_fn.lua and
-- observe_fn.lua are put in front of it.
--
-- Redis Cluster runs a script on one shard, so every key here carries the campaign's hash
-- tag: the voter's limit is counted per campaign for that reason (`{c<id>}~rl:voter:…`).
--
-- KEYS[1..3]  take_quota.lua's keys
-- KEYS[4]     the voter's rate limit (unused without a limit)
-- KEYS[5..]   observe.lua's keys (none: no signals)
-- ARGV[1..4]  take_quota.lua's first four arguments
-- ARGV[5]     the limit's emission interval, ms; 0 for no limit
-- ARGV[6]     the limit's burst
-- ARGV[7..]   observe.lua's arguments (its candidates are the ballot's)
--
-- Returns { 0, observe()'s answer, take_quota()'s answer }; { ms to wait, {}, {} } when the
-- limit refuses (nothing else done); -1 (nothing done) when every pace bucket must be named.
local o = observe_args(4, 6)
local read = o.pace and read_pace(o.pace)
if o.pace and not read then
  return -1
end
local interval = tonumber(ARGV[5])
if interval > 0 then
  local wait = gcra(KEYS[4], interval, tonumber(ARGV[6]))
  if wait > 0 then
    return { wait, {}, {} }
  end
end
local signals = observe(o, read)
return { 0, signals, take_quota(KEYS[1], KEYS[2], KEYS[3], quota_limits(0), o.candidates) }
