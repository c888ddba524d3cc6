-- take_quota: checks and takes every quota of one ballot in one atomic step (all or nothing;
-- see take_quota() in quota_fn.lua, put in front of this script).
--
-- KEYS[1]  hash of the voter's day
-- KEYS[2]  string: the voter's candidate-votes over the whole campaign
-- KEYS[3]  the campaign's "rebuilt" marker
-- ARGV[1]  votes_per_day
-- ARGV[2]  votes_per_candidate_per_day
-- ARGV[3]  votes_per_campaign, or -1 for no limit
-- ARGV[4]  expiry of the day hash, seconds
-- ARGV[5..] the ballot's candidate ids
--
-- Returns what take_quota() returns.
local candidates = {}
for i = 5, #ARGV do
  candidates[#candidates + 1] = ARGV[i]
end
return take_quota(KEYS[1], KEYS[2], KEYS[3], quota_limits(0), candidates)
