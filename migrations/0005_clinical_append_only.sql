-- Clinical records are corrected by new versions or marked entered-in-error, never removed;
-- outcome scores are append-only.
CREATE TRIGGER procedures_no_delete BEFORE DELETE ON procedures FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER adverse_events_no_delete BEFORE DELETE ON adverse_events FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER outcomes_append_only BEFORE UPDATE OR DELETE ON outcomes FOR EACH ROW EXECUTE FUNCTION refuse_change();
