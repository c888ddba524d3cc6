-- A send whose outcome is unknown (the gateway took the request and never answered, or the
-- instance stopped between claiming and recording it) waits in `unknown` until the gateway
-- is asked whether it went out: it is neither failed (it may be lost) nor sent again blindly.
ALTER TABLE survey_records DROP CONSTRAINT survey_records_send_status_check;
ALTER TABLE survey_records ADD CONSTRAINT survey_records_send_status_check
    CHECK (send_status IN ('queued', 'sending', 'sent', 'failed', 'unknown'));
-- When the last attempt was claimed: a status query looks for the SMS from then on.
ALTER TABLE survey_records ADD COLUMN attempted_at TIMESTAMPTZ;
-- When the outcome became unknown, and how many status queries have failed since.
ALTER TABLE survey_records ADD COLUMN unknown_at TIMESTAMPTZ;
ALTER TABLE survey_records ADD COLUMN failed_queries INTEGER NOT NULL DEFAULT 0;
