ALTER TABLE "vials" ADD COLUMN "shipped_at" timestamp with time zone;--> statement-breakpoint
-- When each vial left for its clinic, from its custody. Not a movement: the custody trigger stays out of it.
ALTER TABLE vials DISABLE TRIGGER vials_custody;--> statement-breakpoint
UPDATE vials v SET shipped_at = c.at
  FROM (SELECT DISTINCT ON (vial_id) vial_id, at FROM vial_custody WHERE action = 'shipped' ORDER BY vial_id, id DESC) c
  WHERE c.vial_id = v.id;--> statement-breakpoint
ALTER TABLE vials ENABLE TRIGGER vials_custody;
