-- Every change of a campaign's row, its candidates or its blocklist moves `version` on, held
-- by the database itself whatever writes (see migrations/postgres/0015_campaign_version.sql,
-- where the one-statement ballot write relies on it; SQLite keeps the column alike).
ALTER TABLE campaigns ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER candidates_insert_move_campaign_version AFTER INSERT ON candidates
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = NEW.campaign_id;
END;
CREATE TRIGGER candidates_update_move_campaign_version AFTER UPDATE ON candidates
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = NEW.campaign_id;
END;
CREATE TRIGGER candidates_delete_move_campaign_version AFTER DELETE ON candidates
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = OLD.campaign_id;
END;
CREATE TRIGGER blocks_insert_move_campaign_version AFTER INSERT ON blocks
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = NEW.campaign_id;
END;
CREATE TRIGGER blocks_update_move_campaign_version AFTER UPDATE ON blocks
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = NEW.campaign_id;
END;
CREATE TRIGGER blocks_delete_move_campaign_version AFTER DELETE ON blocks
BEGIN
  UPDATE campaigns SET version = version + 1 WHERE id = OLD.campaign_id;
END;
-- Triggers do not fire themselves again (recursive triggers are off), and the version is
-- moved only when the update did not move it already.
CREATE TRIGGER campaigns_move_version AFTER UPDATE ON campaigns
WHEN NEW.version = OLD.version
BEGIN
  UPDATE campaigns SET version = OLD.version + 1 WHERE id = NEW.id;
END;
