import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeInput, DateTimeOutput, FreeText, NonEmpty, Uuid, pageOf } from '../../shared/schemas.js';

// Vials
const ClinicId = NonEmpty(64).meta({ example: 'clinic-a' });

export const ShipmentCreate = z
  .strictObject({ clinicId: ClinicId, vials: z.int().min(1).max(1_000_000), shippedAt: DateTimeInput.optional() })
  .meta({ example: {"clinicId": "clinic-a", "vials": 10, "shippedAt": "2026-03-02T08:00:00Z"}, id: 'ShipmentCreate' });

export const Shipment = z
  .object({ id: Uuid, lotId: Uuid, clinicId: z.string(), vials: z.int(), shippedAt: DateTimeOutput, recordedBy: z.string(), recordedAt: DateTimeOutput })
  .meta({ id: 'Shipment' });
export type ShipmentDto = z.infer<typeof Shipment>;

export const DiscardCreate = z
  .strictObject({
    clinicId: ClinicId,
    vials: z.int().min(1).max(1_000_000),
    reason: FreeText(1000).meta({ example: 'Vial dropped during thaw' }),
    discardedAt: DateTimeInput.optional(),
  })
  .meta({ example: {"clinicId": "clinic-a", "vials": 1, "reason": "Vial cracked on thaw"}, id: 'DiscardCreate' });

export const Discard = z
  .object({
    id: Uuid,
    lotId: Uuid,
    clinicId: z.string(),
    vials: z.int(),
    reason: z.string(),
    discardedAt: DateTimeOutput,
    recordedBy: z.string(),
    recordedAt: DateTimeOutput,
  })
  .meta({ id: 'Discard' });
export type DiscardDto = z.infer<typeof Discard>;

export const ShipmentPage = pageOf(Shipment).meta({ id: 'ShipmentPage' });
export const DiscardPage = pageOf(Discard).meta({ id: 'DiscardPage' });

export const ClinicStock = z.object({ clinicId: z.string(), shipped: z.int(), administered: z.int(), discarded: z.int(), onHand: z.int() });
export const Inventory = z
  .object({
    lotId: Uuid,
    vialCount: z.int(),
    vialsShipped: z.int(),
    vialsUnshipped: z.int(),
    clinics: z.array(ClinicStock).meta({ description: 'Per clinic; a clinic token sees only its own clinic' }),
  })
  .meta({ id: 'Inventory' });
export const VialListQuery = z.strictObject(pageQuery);
