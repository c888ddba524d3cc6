-- Risk flags of a ballot (JSON array of flag names) and the keyed hash of the device it came
-- from (the mini-program's X-Device-Id), for the review of suspicious clusters.
ALTER TABLE ballots ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ballots ADD COLUMN device_hash TEXT;
