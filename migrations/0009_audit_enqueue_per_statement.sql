-- One INSERT per statement into the sealing queue instead of one trigger call per audit row.
DROP TRIGGER audit_events_enqueue ON audit_events;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION audit_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_unsealed (event_id) SELECT id FROM new_entries;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events
  REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_enqueue();
