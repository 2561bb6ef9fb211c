-- FHIR Bulk Data export jobs, their NDJSON files and the files' chunks (issue 17).
CREATE TABLE "bulk_export_chunks" (
	"file_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "bulk_export_chunks_pk" PRIMARY KEY("file_id","seq")
);
--> statement-breakpoint
CREATE TABLE "bulk_export_files" (
	"id" uuid PRIMARY KEY NOT NULL,
	"job_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"seq" integer NOT NULL,
	"kind" text NOT NULL,
	"type" text NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	"bytes" bigint DEFAULT 0 NOT NULL,
	"chunks" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "bulk_export_files_kind_ck" CHECK ("bulk_export_files"."kind" in ('output','error'))
);
--> statement-breakpoint
CREATE TABLE "bulk_export_jobs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_sub" text NOT NULL,
	"clinic_id" text,
	"kind" text NOT NULL,
	"group_id" uuid,
	"types" text[] NOT NULL,
	"since" timestamp with time zone,
	"request_url" text NOT NULL,
	"status" text NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"lease_token" uuid,
	"lease_until" timestamp with time zone,
	"progress" text,
	"transaction_time" timestamp with time zone,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	CONSTRAINT "bulk_export_jobs_status_ck" CHECK ("bulk_export_jobs"."status" in ('queued','running','completed','failed','cancelled')),
	CONSTRAINT "bulk_export_jobs_kind_ck" CHECK ("bulk_export_jobs"."kind" in ('system','patient','group'))
);
--> statement-breakpoint
ALTER TABLE "bulk_export_chunks" ADD CONSTRAINT "bulk_export_chunks_file_id_bulk_export_files_id_fk" FOREIGN KEY ("file_id") REFERENCES "public"."bulk_export_files"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bulk_export_files" ADD CONSTRAINT "bulk_export_files_job_id_bulk_export_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."bulk_export_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "bulk_export_files_job_idx" ON "bulk_export_files" USING btree ("job_id","attempt","seq");--> statement-breakpoint
CREATE INDEX "bulk_export_jobs_status_idx" ON "bulk_export_jobs" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "bulk_export_jobs_expires_idx" ON "bulk_export_jobs" USING btree ("expires_at");