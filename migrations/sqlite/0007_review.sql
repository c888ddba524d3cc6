-- Keyed hashes of the client's address and of its network (/24 or /64), so that the review
-- can group suspicious ballots by address and network without keeping either in clear.
ALTER TABLE ballots ADD COLUMN ip_hash TEXT;
ALTER TABLE ballots ADD COLUMN network_hash TEXT;
-- Holds and the review select a campaign's ballots of a time window.
CREATE INDEX ballots_by_time ON ballots (campaign_id, cast_at);
