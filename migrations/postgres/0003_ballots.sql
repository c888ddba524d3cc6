-- The ballot ledger: the record every count is derived from. A ballot row commits together
-- with its audit entry (seq, receipt = the entry's hash).

CREATE TABLE ballots (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    voter_id TEXT NOT NULL,
    -- JSON array of candidate ids (strings), in the ballot's order.
    candidate_ids TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    remaining_today INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    receipt TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'counted' CHECK (status IN ('counted', 'quarantined', 'invalidated')),
    cast_at TIMESTAMPTZ NOT NULL,
    -- Two requests with one key by one voter can never both be recorded, on any instance.
    UNIQUE (campaign_id, voter_id, idempotency_key)
);
CREATE INDEX ballots_by_voter ON ballots (voter_id, campaign_id, id);

CREATE TABLE ballot_votes (
    ballot_id BIGINT NOT NULL REFERENCES ballots (id),
    campaign_id BIGINT NOT NULL,
    candidate_id BIGINT NOT NULL,
    PRIMARY KEY (ballot_id, candidate_id)
);
CREATE INDEX ballot_votes_by_candidate ON ballot_votes (campaign_id, candidate_id);
