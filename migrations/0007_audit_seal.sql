-- The audit hash chain (docs/adr/0001-audit-hash-chain.md).
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER recall_notices_no_delete BEFORE DELETE ON recall_notices FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE FUNCTION audit_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_unsealed (event_id) VALUES (NEW.id);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_enqueue();
--> statement-breakpoint
-- The canonical serialization of an entry: its fields as a JSON array (jsonb text output is deterministic),
-- the time in UTC with microseconds. Changing it breaks every existing hash: never edit, add a v2.
CREATE FUNCTION audit_canonical_v1(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_array(
    e.id,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    e.actor_sub, e.actor_clinic_id, e.action, e.resource_type, e.resource_id, e.clinic_id,
    e.request_id, e.outcome, e.details
  )::text
$$;
--> statement-breakpoint
CREATE FUNCTION audit_link_hash(prev_hash text, e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(decode(prev_hash, 'hex') || convert_to(audit_canonical_v1(e), 'UTF8')), 'hex')
$$;
--> statement-breakpoint
-- Seals up to `batch` queued entries in id order. One sealer at a time across every instance: the others
-- return -1 at once. Returns how many entries it sealed.
CREATE FUNCTION audit_seal(batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
  h text;
  n integer := 0;
  e audit_events;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7314201119) THEN
    RETURN -1;
  END IF;
  SELECT c.seq, c.hash INTO last_seq, last_hash FROM audit_chain c ORDER BY c.seq DESC LIMIT 1;
  IF last_seq IS NULL THEN
    last_seq := 0;
    last_hash := repeat('0', 64);
  END IF;
  FOR e IN
    WITH taken AS (
      DELETE FROM audit_unsealed u
      WHERE u.event_id IN (SELECT q.event_id FROM audit_unsealed q ORDER BY q.event_id LIMIT batch)
      RETURNING u.event_id
    )
    SELECT a.* FROM audit_events a JOIN taken t ON t.event_id = a.id ORDER BY a.id
  LOOP
    last_seq := last_seq + 1;
    h := audit_link_hash(last_hash, e);
    INSERT INTO audit_chain (seq, event_id, prev_hash, hash) VALUES (last_seq, e.id, last_hash, h);
    last_hash := h;
    n := n + 1;
  END LOOP;
  RETURN n;
END;
$$;
--> statement-breakpoint
-- Entries written before the chain existed are sealed first.
INSERT INTO audit_unsealed (event_id) SELECT id FROM audit_events ORDER BY id;
