-- Service records for SMS callback surveys (短信回访): whom to ask about which visit. The
-- phone number is kept encrypted (for sending) and as a keyed hash (for duplicates), both
-- cleared after the retention period; the survey token only as its SHA-256.
CREATE TABLE survey_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    target_id BIGINT NOT NULL REFERENCES targets (id),
    visited_on TEXT NOT NULL,
    phone_hash TEXT,
    phone_enc TEXT,
    send_status TEXT NOT NULL DEFAULT 'queued' CHECK (send_status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    token_hash TEXT UNIQUE,
    expires_at TEXT,
    answered_at TEXT,
    rating_id BIGINT REFERENCES ratings (id),
    created_at TEXT NOT NULL,
    UNIQUE (campaign_id, phone_hash, target_id, visited_on)
);
CREATE INDEX survey_records_to_send ON survey_records (send_status, next_attempt_at);
CREATE INDEX survey_records_by_age ON survey_records (created_at);
