-- The chain's foreign key to audit_events checked each sealed entry with a FOR KEY SHARE row lock, which
-- writes to the entry's page (WAL included) once per audit entry, reads too. It guarded nothing the
-- append-only trigger does not already refuse, and a superuser who disables triggers disables it as well;
-- verification reports a chain link whose entry is gone as entry-missing.
ALTER TABLE "audit_chain" DROP CONSTRAINT "audit_chain_event_id_audit_events_id_fk";
