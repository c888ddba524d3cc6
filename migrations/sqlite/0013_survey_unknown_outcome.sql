-- A send whose outcome is unknown (the gateway took the request and never answered, or the
-- instance stopped between claiming and recording it) waits in `unknown` until the gateway
-- is asked whether it went out: it is neither failed (it may be lost) nor sent again blindly.
--
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt. The ids and the
-- AUTOINCREMENT counter are kept: a record's id travels to the gateways (Tencent's
-- `SessionContext`, Aliyun's `OutId`) and is how a status query finds its SMS, so an id is
-- never given to another record. No table refers to this one.
CREATE TABLE survey_records_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    target_id BIGINT NOT NULL REFERENCES targets (id),
    visited_on TEXT NOT NULL,
    phone_hash TEXT,
    phone_enc TEXT,
    send_status TEXT NOT NULL DEFAULT 'queued'
        CHECK (send_status IN ('queued', 'sending', 'sent', 'failed', 'unknown')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    token_hash TEXT UNIQUE,
    expires_at TEXT,
    answered_at TEXT,
    rating_id BIGINT REFERENCES ratings (id),
    created_at TEXT NOT NULL,
    sent_at TEXT,
    -- When the last attempt was claimed: a status query looks for the SMS from then on.
    attempted_at TEXT,
    -- When the outcome became unknown, and how many status queries have failed since.
    unknown_at TEXT,
    failed_queries INTEGER NOT NULL DEFAULT 0,
    UNIQUE (campaign_id, phone_hash, target_id, visited_on)
);
INSERT INTO survey_records_new (id, campaign_id, target_id, visited_on, phone_hash, phone_enc,
    send_status, attempts, next_attempt_at, last_error, token_hash, expires_at, answered_at,
    rating_id, created_at, sent_at)
SELECT id, campaign_id, target_id, visited_on, phone_hash, phone_enc, send_status, attempts,
    next_attempt_at, last_error, token_hash, expires_at, answered_at, rating_id, created_at,
    sent_at
FROM survey_records;
DELETE FROM sqlite_sequence WHERE name = 'survey_records_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'survey_records_new', seq FROM sqlite_sequence WHERE name = 'survey_records';
DROP TABLE survey_records;
ALTER TABLE survey_records_new RENAME TO survey_records;
CREATE INDEX survey_records_to_send ON survey_records (send_status, next_attempt_at);
CREATE INDEX survey_records_by_age ON survey_records (created_at);
