-- observe_fn: the risk step as a function, put in front of the scripts that record a
-- ballot's signals (observe.lua, take_ballot.lua). Not a script by itself.
--
-- observe(o, sums, out, j) records one ballot's signals and answers what they measure:
-- `o` says where the sets, their windows, the member and the pace lie in the script's keys
-- and arguments (observe_args()), `sums` is what read_pace() read first, and the answer goes
-- into `out` after its first `j` values.
--
-- Sets: adds `member` to each short-lived set (the voters seen on one device, address,
-- network, or casting one set of candidates) and measures how many distinct members each
-- holds. A set lives its window (its argument after the member and the count of sets,
-- seconds) from its first member, so counts are per window.
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
-- pace = { sums = key, buckets = KEYS index before this minute's bucket (then the minute
--          before's, ...; none named when #KEYS is that index), minute = this minute,
--          recent = minutes in the recent window, span = minutes in both windows,
--          ttl = seconds, first = ARGV index of the first candidate (the rest follow) }
--
-- This runs for every ballot, in Redis's interpreter, where each table, string and call
-- costs (a ballot step with every check: 22 µs of Redis as first written, 20.5–21.3 µs
-- since, 16 µs for the same commands with the least Lua): the keys and arguments are read
-- where they lie rather than copied into tables, and a table is made only for the answer.
--
-- Numbers given to redis.call are passed as strings: Redis formats a Lua number with a
-- costly floating-point printf, and this runs for every ballot.
--
-- observe() answers, in `out` after its first `j` values, and returns `out`: the size of
-- each set..., then with pace: all votes recent, all votes before, then per candidate: its
-- votes recent, its votes before.

-- Adds the buckets up: recent and before totals by field (candidate id or `*`).
local function add_up(pace)
  local r, b = {}, {}
  for i = pace.buckets + 1, #KEYS do
    local into = (i - pace.buckets <= pace.recent) and r or b
    local kv = redis.call('HGETALL', KEYS[i])
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

-- Reads the sums' minute, then all votes recent and before, then each candidate's votes
-- recent and before: { minute or false, r:*, b:*, r:<c1>, b:<c1>, ... }.
local function read_sums(pace)
  local args = { pace.sums, '@', 'r:*', 'b:*' }
  for i = pace.first, #ARGV do
    args[#args + 1] = 'r:' .. ARGV[i]
    args[#args + 1] = 'b:' .. ARGV[i]
  end
  return redis.call('HMGET', unpack(args))
end

-- Reads the sums in one read: they serve as they are when of this minute (for all but the
-- first ballot of a minute, mostly). Returns read_sums()'s answer, or nil when observe()
-- would need buckets the caller did not name.
local function read_pace(pace)
  local sums = read_sums(pace)
  if tonumber(sums[1] or '-1') ~= pace.minute and #KEYS - pace.buckets < pace.span then
    return nil
  end
  return sums
end

-- `o` as observe_args() gives it, `sums` as read_pace() gave it (nil without pace). The
-- answer goes into `out` after its first `j` values (a script's reply is cheaper flat).
local function observe(o, sums, out, j)
  local member = ARGV[o.a + 1]
  for i = 1, o.n do
    local key = KEYS[o.k + i]
    local added = redis.call('SADD', key, member)
    local size = redis.call('SCARD', key)
    -- A set whose one member was just added was made now: its window starts now.
    if added == 1 and size == 1 then
      redis.call('EXPIRE', key, ARGV[o.a + 2 + i])
    end
    out[j + i] = size
  end
  local pace = o.pace
  if not pace then
    return out
  end
  local at = tonumber(sums[1] or '-1')
  if at < pace.minute then
    -- The first ballot of its minute (or after a quiet spell): the sums start afresh.
    resum(pace)
    sums = read_sums(pace)
  elseif at > pace.minute then
    -- A clock behind the sums': its own windows, added up from its buckets.
    local r, b = add_up(pace)
    sums = { false, r['*'] or 0, b['*'] or 0 }
    for i = pace.first, #ARGV do
      sums[#sums + 1] = r[ARGV[i]] or 0
      sums[#sums + 1] = b[ARGV[i]] or 0
    end
  end
  -- The answer, with the ballot's own votes added to the recent window.
  local mine = #ARGV - pace.first + 1
  j = j + o.n
  out[j + 1] = tonumber(sums[2] or 0) + mine
  out[j + 2] = tonumber(sums[3] or 0)
  for i = 1, mine do
    out[j + 2 * i + 1] = tonumber(sums[2 * i + 2] or 0) + 1
    out[j + 2 * i + 2] = tonumber(sums[2 * i + 3] or 0)
  end
  return out
end

-- Where observe()'s arguments lie, KEYS after the first `k` and ARGV after the first `a`,
-- laid out as observe.lua says: { k, a, n sets, first = ARGV index of the first candidate,
-- pace (nil for none) }. Without pace the candidates follow the windows.
local function observe_args(k, a)
  local n = tonumber(ARGV[a + 2])
  local o = { k = k, a = a, n = n, first = a + n + 3 }
  if #KEYS > k + n then
    o.first = a + n + 7
    o.pace = {
      sums = KEYS[k + n + 1],
      buckets = k + n + 1,
      minute = tonumber(ARGV[a + n + 3]),
      recent = tonumber(ARGV[a + n + 4]),
      span = tonumber(ARGV[a + n + 5]),
      ttl = ARGV[a + n + 6],
      first = a + n + 7,
    }
  end
  return o
end
