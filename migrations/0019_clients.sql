-- SMART Backend Services: registered clients and the assertion jti replay store (issue 17).
CREATE TABLE "client_assertion_jtis" (
	"client_id" uuid NOT NULL,
	"jti" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "client_assertion_jtis_client_id_jti_pk" PRIMARY KEY("client_id","jti")
);
--> statement-breakpoint
CREATE TABLE "clients" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"clinic_id" text,
	"jwks_uri" text,
	"jwks" jsonb,
	"scopes" text[] NOT NULL,
	"status" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"updated_by" text NOT NULL,
	CONSTRAINT "clients_status_ck" CHECK ("clients"."status" in ('active','disabled')),
	CONSTRAINT "clients_keys_ck" CHECK (("clients"."jwks_uri" is null) <> ("clients"."jwks" is null))
);
--> statement-breakpoint
ALTER TABLE "client_assertion_jtis" ADD CONSTRAINT "client_assertion_jtis_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "client_assertion_jtis_expires_idx" ON "client_assertion_jtis" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "clients_clinic_idx" ON "clients" USING btree ("clinic_id","id");