DROP INDEX "audit_actor_idx";--> statement-breakpoint
DROP INDEX "audit_occurred_idx";--> statement-breakpoint
CREATE INDEX "audit_occurred_brin" ON "audit_events" USING brin ("occurred_at");