-- observe: records one ballot's risk signals and returns what they measure, in one step (see
-- observe() in observe_fn.lua, put in front of this script).
--
-- KEYS[1..n]    the sets
-- KEYS[n+1]     the campaign's pace sums (absent, with the buckets: no pace)
-- KEYS[n+2..]   none, or (when the script asked for them) the pace bucket of every minute
--               of the windows, this minute's first
-- ARGV[1]       the member
-- ARGV[2]       n, the number of sets
-- ARGV[3..n+2]  each set's window, seconds
-- ARGV[n+3]     this minute (Unix time / 60)                        } with pace
-- ARGV[n+4]     how many minutes, this one included, make the recent  } only
--               window                                                }
-- ARGV[n+5]     how many minutes both windows span                    }
-- ARGV[n+6]     a bucket's lifetime from its first vote, seconds      }
--               (the sums' too)                                       }
-- ARGV[n+7..]   the ballot's candidates (ARGV[n+3..] without pace)
--
-- Returns what observe() returns, or -1 (nothing done) when every bucket must be named.
local o = observe_args(0, 0)
local sums = o.pace and read_pace(o.pace)
if o.pace and not sums then
  return -1
end
return observe(o, sums, {}, 0)
