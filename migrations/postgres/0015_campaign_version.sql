-- Every change of a campaign's row, its candidates or its blocklist moves `version` on (the
-- triggers below; publication seals the chain's head, which the ballot write checks too). A ballot batch checked against a cached view of the campaign can
-- then be written in one statement that asks only whether the version is still the one it
-- was checked against (see store/postgres.rs).
ALTER TABLE campaigns ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Held by the database itself, whatever writes: this service, an instance of an older
-- version during a rolling deploy, or a change that forgets to lock the campaign.
CREATE FUNCTION campaign_version_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE campaigns SET version = version + 1
  WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign_id ELSE NEW.campaign_id END;
  RETURN NULL;
END
$$;

CREATE TRIGGER candidates_move_campaign_version AFTER INSERT OR UPDATE OR DELETE ON candidates
  FOR EACH ROW EXECUTE FUNCTION campaign_version_on_change();
CREATE TRIGGER blocks_move_campaign_version AFTER INSERT OR UPDATE OR DELETE ON blocks
  FOR EACH ROW EXECUTE FUNCTION campaign_version_on_change();

CREATE FUNCTION campaign_version_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version = OLD.version THEN
    NEW.version := OLD.version + 1;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER campaigns_move_version BEFORE UPDATE ON campaigns
  FOR EACH ROW EXECUTE FUNCTION campaign_version_on_update();
