-- The survey token of a record that may be sent again, sealed with the phone vault (bound to
-- the token's hash): a send again after an unknown outcome carries the same link, so that the
-- first SMS, if it did arrive, still opens the survey. Only the hash answers requests; this is
-- cleared once the record is sent or failed (no send follows) and with the phone number.
ALTER TABLE survey_records ADD COLUMN token_enc TEXT;
