import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateOnly, DateTimeInput, DateTimeOutput, FreeText, NonEmpty, Uuid, pageOf } from '../../shared/schemas.js';

// Vials
const ClinicId = NonEmpty(64).meta({ example: 'clinic-a' });

/** The text of a vial's label barcode, exactly as scanned (an ISBT 128 product code + division, or the default `{lotNumber}-0001`). */
export const Barcode = NonEmpty(100).meta({ example: 'EVX-2026-0142-0001' });

const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;
const VialIds = z.array(Uuid).min(1).max(1000).refine(unique, 'each vial once').meta({ description: 'The vials, by id' });
const Barcodes = z.array(Barcode).min(1).max(1000).refine(unique, 'each barcode once').meta({ description: 'The vials, by label barcode (scanned)' });
const VialNumber = z.int().min(1).max(1_000_000).meta({ description: 'A number of vials: the lowest sequences available are taken' });

/** Exactly one way of naming the vials of a movement: `vialIds`, `barcodes`, or (where `count` allows) a number `vials`. */
function oneChoice(v: { vialIds?: unknown; barcodes?: unknown; vials?: unknown }, ctx: z.RefinementCtx, count = true) {
  const choices: ('vialIds' | 'barcodes' | 'vials')[] = count ? ['vialIds', 'barcodes', 'vials'] : ['vialIds', 'barcodes'];
  const given = choices.filter((k) => v[k] !== undefined);
  if (given.length !== 1) {
    ctx.addIssue({ code: 'custom', path: [given[1] ?? 'vialIds'], message: count ? 'give exactly one of vialIds, barcodes or vials' : 'give exactly one of vialIds or barcodes' });
  }
}

export const ShipmentCreate = z
  .strictObject({ clinicId: ClinicId, vials: VialNumber.optional(), vialIds: VialIds.optional(), barcodes: Barcodes.optional(), shippedAt: DateTimeInput.optional() })
  .superRefine((v, ctx) => oneChoice(v, ctx))
  .meta({ example: { clinicId: 'clinic-a', vials: 10, shippedAt: '2026-03-02T08:00:00Z' }, id: 'ShipmentCreate' });

const MovedVials = {
  vials: z.int().meta({ description: 'How many vials' }),
  vialIds: z.array(Uuid).meta({ description: 'The vials, in sequence order' }),
  barcodes: z.array(z.string()).meta({ description: 'Their barcodes, in the same order' }),
};

export const Shipment = z
  .object({ id: Uuid, lotId: Uuid, clinicId: z.string(), ...MovedVials, shippedAt: DateTimeOutput, recordedBy: z.string(), recordedAt: DateTimeOutput })
  .meta({ id: 'Shipment' });
export type ShipmentDto = z.infer<typeof Shipment>;

export const DiscardCreate = z
  .strictObject({
    clinicId: ClinicId,
    vials: VialNumber.optional(),
    vialIds: VialIds.optional(),
    barcodes: Barcodes.optional(),
    reason: FreeText(1000).meta({ example: 'Vial dropped during thaw' }),
    discardedAt: DateTimeInput.optional(),
  })
  .superRefine((v, ctx) => oneChoice(v, ctx))
  .meta({ example: { clinicId: 'clinic-a', barcodes: ['EVX-2026-0142-0007'], reason: 'Vial cracked on thaw' }, id: 'DiscardCreate' });

export const Discard = z
  .object({ id: Uuid, lotId: Uuid, clinicId: z.string(), ...MovedVials, reason: z.string(), discardedAt: DateTimeOutput, recordedBy: z.string(), recordedAt: DateTimeOutput })
  .meta({ id: 'Discard' });
export type DiscardDto = z.infer<typeof Discard>;

export const ReturnCreate = z
  .strictObject({
    clinicId: ClinicId,
    vialIds: VialIds.optional(),
    barcodes: Barcodes.optional(),
    reason: FreeText(1000).meta({ example: 'Recall EVX-2026-0142: returned unused' }),
    returnedAt: DateTimeInput.optional(),
  })
  .superRefine((v, ctx) => oneChoice(v, ctx, false))
  .meta({ example: { clinicId: 'clinic-a', barcodes: ['EVX-2026-0142-0008', 'EVX-2026-0142-0009'], reason: 'Recall: returned unused' }, id: 'VialReturnCreate' });

export const VialReturn = z
  .object({ id: Uuid, lotId: Uuid, clinicId: z.string(), ...MovedVials, reason: z.string(), returnedAt: DateTimeOutput, recordedBy: z.string(), recordedAt: DateTimeOutput })
  .meta({ id: 'VialReturn' });
export type ReturnDto = z.infer<typeof VialReturn>;

export const ShipmentPage = pageOf(Shipment).meta({ id: 'ShipmentPage' });
export const DiscardPage = pageOf(Discard).meta({ id: 'DiscardPage' });
export const VialReturnPage = pageOf(VialReturn).meta({ id: 'VialReturnPage' });

export const VIAL_STATUSES = ['in-stock', 'at-clinic', 'administered', 'discarded', 'returned', 'recalled', 'expired'] as const;

export const Vial = z
  .object({
    id: Uuid,
    lotId: Uuid,
    lotNumber: z.string(),
    sequence: z.int().meta({ description: '1..vialCount within the lot' }),
    barcode: z.string(),
    status: z.enum(VIAL_STATUSES).meta({ description: '`expired`: unused (in stock or at a clinic) and past the lot\'s expiresOn' }),
    clinicId: z.string().nullable().meta({ description: 'The clinic that holds or last held the vial (the consignee); null in stock' }),
    usedBy: Uuid.nullable().meta({ description: 'The procedure that administered it' }),
    receivedAt: DateTimeOutput.nullable().meta({ description: 'When the clinic confirmed its arrival' }),
    expiresOn: DateOnly,
  })
  .meta({ id: 'Vial' });
export type VialDto = z.infer<typeof Vial>;
export const VialPage = pageOf(Vial).meta({ id: 'VialPage' });

export const CUSTODY_ACTIONS = ['released', 'shipped', 'received', 'administered', 'discarded', 'returned', 'recalled'] as const;
export const CustodyEntry = z
  .object({
    at: DateTimeOutput.meta({ description: 'When it happened (the movement\'s effective time)' }),
    action: z.enum(CUSTODY_ACTIONS),
    clinicId: z.string().nullable(),
    by: z.string().meta({ description: 'Who recorded it (token subject)' }),
    procedureId: Uuid.optional(),
    shipmentId: Uuid.optional(),
    discardId: Uuid.optional(),
    returnId: Uuid.optional(),
    reason: z.string().optional(),
    recordedAt: DateTimeOutput,
  })
  .meta({ id: 'VialCustodyEntry' });
export type CustodyEntryDto = z.infer<typeof CustodyEntry>;
export const CustodyPage = pageOf(CustodyEntry).meta({ id: 'VialCustodyPage' });

export const VialParams = z.strictObject({ id: Uuid });
const VialStatusFilter = z.enum(VIAL_STATUSES).optional();
export const VialListQuery = z.strictObject({
  ...pageQuery,
  barcode: Barcode.optional().meta({ description: 'The scanned label: exact match' }),
  lotId: Uuid.optional(),
  status: VialStatusFilter,
  clinicId: ClinicId.optional(),
});
export const LotVialsQuery = z.strictObject({ ...pageQuery, status: VialStatusFilter, clinicId: ClinicId.optional() });
export type VialListFilters = { barcode?: string; lotId?: string; status?: string; clinicId?: string };
export const MovementListQuery = z.strictObject(pageQuery);
export const CustodyQuery = z.strictObject(pageQuery);

export const ReceiptRequest = z
  .strictObject({ receivedAt: DateTimeInput.optional().meta({ description: 'When the vial arrived; defaults to now' }) })
  .meta({ id: 'VialReceipt', example: { receivedAt: '2026-03-03T10:15:00Z' } });

export const ClinicStock = z.object({
  clinicId: z.string(),
  shipped: z.int(),
  administered: z.int(),
  discarded: z.int(),
  returned: z.int(),
  recalled: z.int().meta({ description: 'Unused vials a recall marked: to quarantine, return or destroy' }),
  expired: z.int().meta({ description: 'Unused vials past the lot\'s expiry: cannot be given' }),
  onHand: z.int().meta({ description: 'Usable now: shipped − administered − discarded − returned − recalled − expired' }),
});
export const Inventory = z
  .object({
    lotId: Uuid,
    vialCount: z.int(),
    vialsShipped: z.int(),
    vialsUnshipped: z.int(),
    clinics: z.array(ClinicStock).meta({ description: 'Per clinic; a clinic token sees only its own clinic' }),
  })
  .meta({ id: 'Inventory' });
