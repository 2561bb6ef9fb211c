-- Supply records are evidence for traceability (21 CFR 1271.290): never removed; results and status
-- changes are never rewritten either, a correction is a new row.
CREATE TRIGGER donors_no_delete BEFORE DELETE ON donors FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER lots_no_delete BEFORE DELETE ON lots FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER lot_donors_append_only BEFORE UPDATE OR DELETE ON lot_donors FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER donor_tests_append_only BEFORE UPDATE OR DELETE ON donor_tests FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER donor_eligibility_append_only BEFORE UPDATE OR DELETE ON donor_eligibility FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER lot_status_changes_append_only BEFORE UPDATE OR DELETE ON lot_status_changes FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER shipments_append_only BEFORE UPDATE OR DELETE ON shipments FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER discards_append_only BEFORE UPDATE OR DELETE ON discards FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER lot_stock_no_delete BEFORE DELETE ON lot_stock FOR EACH ROW EXECUTE FUNCTION refuse_change();
