-- Campaign administration on the record: the audit chain, evaluation targets, units of
-- unit handlers, and reasons for rejections and withdrawals.

ALTER TABLE staff_users ADD COLUMN unit TEXT;
ALTER TABLE candidates ADD COLUMN reason TEXT NOT NULL DEFAULT '';

CREATE TABLE targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_id BIGINT REFERENCES targets (id),
    UNIQUE (campaign_id, code)
);

-- One row per campaign: the chain's head. Appending locks it, so concurrent appends queue
-- up and the chain never forks; the primary key of the entries forbids gaps and repeats.
CREATE TABLE audit_heads (
    campaign_id BIGINT PRIMARY KEY REFERENCES campaigns (id),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_entries (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);
