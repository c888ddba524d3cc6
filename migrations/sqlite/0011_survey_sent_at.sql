-- When a survey SMS was sent.
ALTER TABLE survey_records ADD COLUMN sent_at TEXT;
