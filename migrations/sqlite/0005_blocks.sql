-- Blocklists, per campaign: voters (by voter id) and networks (CIDR ranges) that may not
-- vote. A lifted block stays as a row with `blocked = false`; every change is a chain entry
-- carrying the row's new state, so the chain can be replayed into this table.

CREATE TABLE blocks (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    -- 'voter' or 'network'
    subject TEXT NOT NULL CHECK (subject IN ('voter', 'network')),
    -- a voter id, or a normalized CIDR range
    value TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    reason TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, subject, value)
);
