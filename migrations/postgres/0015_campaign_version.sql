-- Every change of a campaign that can decide whether a ballot is accepted (its rules and
-- phases, its candidates' status, its blocklist, its publication) locks the campaign's row
-- and moves `version` on. A ballot batch checked against a cached view of the campaign can
-- then be written in one statement that asks only whether the version is still the one it
-- was checked against (see store/postgres.rs).
ALTER TABLE campaigns ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
