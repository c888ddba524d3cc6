-- observe_fn: the risk step as a function, put in front of the scripts that record a
-- ballot's signals (observe.lua, take_ballot.lua). Not a script by itself.
--
-- observe(o, read) records one ballot's signals and returns what they measure: `o` holds
-- the sets, their windows, the member and the pace (observe_args() reads them from a
-- script's keys and arguments), `read` what read_pace() read first.
--
-- Sets: adds `member` to each short-lived set (the voters seen on one device, address,
-- network, or casting one set of candidates) and measures how many distinct members each
-- holds. A set lives its window (`windows[i]`, seconds) from its first member, so counts are
-- per window.
--
-- Pace (nil for none): each candidate's votes, and all votes, over the `recent` minutes up
-- to this one and over the minutes before them, `span` minutes in all, as committed ballots
-- left them (count_pace.lua counts a batch's votes in a bucket per minute: a hash, field per
-- candidate, `*` for all votes, living `pace.ttl` seconds from its first vote). The ballot
-- only reads, and its answer adds its own votes to the recent window. Adding up the buckets
-- for every ballot was the costliest part of the risk step, so a sums hash keeps the two
-- windows' totals for one minute (`@`): fields `r:<candidate>`, `r:*` (recent) and
-- `b:<candidate>`, `b:*` (before). count_pace.lua adds every vote it counts inside the sums'
-- windows to them too, so they always equal the buckets' totals. The first ballot of a
-- minute adds the buckets up afresh for that minute; a ballot from a clock behind the sums'
-- minute adds its own buckets up. The answer is the same either way.
--
-- A ballot of the sums' minute needs no bucket, so the caller names none (a shorter
-- command, on every ballot). When the sums are of another minute and the caller named fewer
-- than `span` buckets, read_pace() returns nil and the script does nothing: the caller asks
-- again with every bucket named (scripts must name every key they touch). It reads, and
-- writes nothing, so that a script can decide before any write.
--
-- pace = { sums = key, buckets = { this minute's key, the minute before's, ... } or {},
--          minute = this minute, recent = minutes in the recent window, span = minutes in
--          both windows, ttl = seconds, candidates = { ids } }
--
-- Numbers given to redis.call are passed as strings: Redis formats a Lua number with a
-- costly floating-point printf, and this runs for every ballot.
--
-- observe() returns { size of each set..., then with pace: all votes recent, all votes
-- before, then per candidate: its votes recent, its votes before }.

-- Adds the buckets up: recent and before totals by field (candidate id or `*`).
local function add_up(pace)
  local r, b = {}, {}
  for i, key in ipairs(pace.buckets) do
    local into = (i <= pace.recent) and r or b
    local kv = redis.call('HGETALL', key)
    for j = 1, #kv, 2 do
      into[kv[j]] = (into[kv[j]] or 0) + tonumber(kv[j + 1])
    end
  end
  return r, b
end

-- Rebuilds the sums for `minute` from the buckets. The fields go in HSETs of at most 500
-- (`unpack` fails past some 8,000 values: a campaign with thousands of candidates voted
-- for in the windows would otherwise lose its sums, its ballots failing with them).
local function resum(pace)
  local r, b = add_up(pace)
  redis.call('DEL', pace.sums)
  local args = { '@', string.format('%d', pace.minute) }
  local function put(field, n)
    args[#args + 1] = field
    args[#args + 1] = string.format('%d', n)
    if #args >= 1000 then
      redis.call('HSET', pace.sums, unpack(args))
      args = {}
    end
  end
  for field, n in pairs(r) do
    put('r:' .. field, n)
  end
  for field, n in pairs(b) do
    put('b:' .. field, n)
  end
  if #args > 0 then
    redis.call('HSET', pace.sums, unpack(args))
  end
  redis.call('EXPIRE', pace.sums, pace.ttl)
end

-- The pace's fields in the sums hash: all votes recent and before, then per candidate.
local function pace_fields(pace)
  local fields = { 'r:*', 'b:*' }
  for _, c in ipairs(pace.candidates) do
    fields[#fields + 1] = 'r:' .. c
    fields[#fields + 1] = 'b:' .. c
  end
  return fields
end

-- The ballot's answer from totals read in pace_fields() order (strings or numbers, nil for
-- none), with its own votes added to the recent window.
local function answer(pace, totals, out)
  out[#out + 1] = tonumber(totals[1] or 0) + #pace.candidates
  out[#out + 1] = tonumber(totals[2] or 0)
  for i = 1, #pace.candidates do
    out[#out + 1] = tonumber(totals[2 * i + 1] or 0) + 1
    out[#out + 1] = tonumber(totals[2 * i + 2] or 0)
  end
end

-- Reads the sums' minute and the ballot's fields, in one read: they serve as they are when
-- the sums are of this minute (for all but the first ballot of a minute, mostly). Returns
-- { at = the sums' minute, totals = the fields' values }, or nil when observe() would need
-- buckets the caller did not name.
local function read_pace(pace)
  local totals = redis.call('HMGET', pace.sums, '@', unpack(pace_fields(pace)))
  local at = tonumber(table.remove(totals, 1) or '-1')
  if at ~= pace.minute and #pace.buckets < pace.span then
    return nil
  end
  return { at = at, totals = totals }
end

-- `o` as observe_args() gives it, `read` as read_pace() gave it (nil without pace).
local function observe(o, read)
  local out = {}
  for i, key in ipairs(o.sets) do
    local added = redis.call('SADD', key, o.member)
    local size = redis.call('SCARD', key)
    -- A set whose one member was just added was made now: its window starts now.
    if added == 1 and size == 1 then
      redis.call('EXPIRE', key, o.windows[i])
    end
    out[#out + 1] = size
  end
  local pace = o.pace
  if not pace then
    return out
  end
  local at, totals = read.at, read.totals
  if at < pace.minute then
    -- The first ballot of its minute (or after a quiet spell): the sums start afresh.
    resum(pace)
    totals = redis.call('HMGET', pace.sums, unpack(pace_fields(pace)))
  elseif at > pace.minute then
    -- A clock behind the sums': its own windows, added up from its buckets.
    local r, b = add_up(pace)
    totals = { r['*'] or 0, b['*'] or 0 }
    for _, c in ipairs(pace.candidates) do
      totals[#totals + 1] = r[c] or 0
      totals[#totals + 1] = b[c] or 0
    end
  end
  answer(pace, totals, out)
  return out
end

-- observe()'s arguments, read from KEYS after the first `k` and ARGV after the first `a`,
-- laid out as observe.lua says: { sets, windows, member, pace (nil for none), candidates }.
local function observe_args(k, a)
  local n = tonumber(ARGV[a + 2])
  local o = { sets = {}, windows = {}, member = ARGV[a + 1], candidates = {} }
  for i = 1, n do
    o.sets[i] = KEYS[k + i]
    o.windows[i] = ARGV[a + 2 + i]
  end
  for i = a + n + 7, #ARGV do
    o.candidates[#o.candidates + 1] = ARGV[i]
  end
  if #KEYS > k + n then
    local buckets = {}
    for i = k + n + 2, #KEYS do
      buckets[#buckets + 1] = KEYS[i]
    end
    o.pace = {
      sums = KEYS[k + n + 1],
      buckets = buckets,
      minute = tonumber(ARGV[a + n + 3]),
      recent = tonumber(ARGV[a + n + 4]),
      span = tonumber(ARGV[a + n + 5]),
      ttl = ARGV[a + n + 6],
      candidates = o.candidates,
    }
  end
  return o
end
