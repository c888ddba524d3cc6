-- The calendar day (in the campaign's time zone) whose quotas a ballot used, so that the
-- quotas of the current day can be rebuilt from the ledger with an exact match.
ALTER TABLE ballots ADD COLUMN quota_day TEXT NOT NULL DEFAULT '';
CREATE INDEX ballots_by_day ON ballots (campaign_id, quota_day);
