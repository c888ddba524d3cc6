-- Results: expert review, the publicity period's objections, frozen results, and the seal
-- that publication puts on a campaign's chain.

-- The seq of the `results.published` entry: once set, appending to the chain is refused, so
-- nothing in the campaign can change (every write appends under the head's lock).
ALTER TABLE audit_heads ADD COLUMN sealed_seq BIGINT;

-- Which categories an expert scores in a campaign.
CREATE TABLE expert_assignments (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    staff_id BIGINT NOT NULL REFERENCES staff_users (id),
    category_id BIGINT NOT NULL REFERENCES categories (id),
    PRIMARY KEY (campaign_id, staff_id, category_id)
);

-- One score per expert per candidate, never changed once submitted.
CREATE TABLE expert_scores (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    staff_id BIGINT NOT NULL REFERENCES staff_users (id),
    candidate_id BIGINT NOT NULL REFERENCES candidates (id),
    points TEXT NOT NULL,
    total BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    receipt TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, staff_id, candidate_id)
);

-- Frozen results: drafts for the publicity period, and the final, published ones.
CREATE TABLE results (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    seq BIGINT NOT NULL,
    stage TEXT NOT NULL CHECK (stage IN ('draft', 'final')),
    body TEXT NOT NULL,
    snapshot_hash TEXT NOT NULL,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    frozen_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);

-- Objections in the publicity period (公示异议). The name and contact are personal
-- information: kept encrypted, shown to organizers only.
CREATE TABLE objections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    candidate_id BIGINT REFERENCES candidates (id),
    name_enc TEXT,
    contact_enc TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered')),
    verdict TEXT CHECK (verdict IN ('upheld', 'rejected')),
    answer TEXT,
    seq BIGINT NOT NULL,
    answer_seq BIGINT,
    created_at TEXT NOT NULL,
    answered_at TEXT
);
CREATE INDEX objections_by_campaign ON objections (campaign_id, status, id);
