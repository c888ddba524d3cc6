-- Every change of a campaign that can decide whether a ballot is accepted moves `version`
-- on (see migrations/postgres/0015_campaign_version.sql; SQLite does not use it for ballots,
-- the column is kept alike on both backends).
ALTER TABLE campaigns ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
