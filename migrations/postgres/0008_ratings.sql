-- Ratings of evaluation targets, and the opinions that unsatisfied ratings with a comment
-- become for the target's unit to answer.

-- Staff accounts of a rater kind (party members, leaders, supervisors) rate in their group.
ALTER TABLE staff_users ADD COLUMN rater_group TEXT CHECK (rater_group IN ('party_member', 'leader', 'supervisor'));

CREATE TABLE ratings (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    target_id BIGINT NOT NULL REFERENCES targets (id),
    voter_id TEXT NOT NULL,
    rater_group TEXT NOT NULL,
    channel TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    comment TEXT NOT NULL DEFAULT '',
    -- The rating period (2026-11, 2026-Q4, 2026) and the quota day, in the campaign's zone.
    period TEXT NOT NULL,
    quota_day TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    seq BIGINT NOT NULL,
    receipt TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'counted' CHECK (status IN ('counted', 'quarantined', 'invalidated')),
    rated_at TIMESTAMPTZ NOT NULL,
    -- One rating per voter per target per period, whatever instance records it.
    UNIQUE (campaign_id, voter_id, target_id, period),
    UNIQUE (campaign_id, voter_id, idempotency_key)
);
CREATE INDEX ratings_by_day ON ratings (campaign_id, voter_id, quota_day);
CREATE INDEX ratings_by_target ON ratings (campaign_id, period, target_id);

CREATE TABLE opinions (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    rating_id BIGINT NOT NULL UNIQUE REFERENCES ratings (id),
    target_id BIGINT NOT NULL REFERENCES targets (id),
    -- The unit that answers: the code of the top of the target's tree.
    unit_code TEXT NOT NULL,
    comment TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed')),
    verified BOOLEAN,
    action TEXT NOT NULL DEFAULT '',
    answered_by BIGINT REFERENCES staff_users (id),
    created_at TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ
);
CREATE INDEX opinions_by_unit ON opinions (unit_code, status, id);
CREATE INDEX opinions_by_campaign ON opinions (campaign_id, status, id);

-- Ratings a voter used per quota day: taken in the rating's own transaction (a row lock), so
-- the daily limit is exact on every instance and never needs rebuilding.
CREATE TABLE rating_quota (
    campaign_id BIGINT NOT NULL,
    voter_id TEXT NOT NULL,
    quota_day TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, voter_id, quota_day)
);
