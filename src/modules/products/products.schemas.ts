import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeOutput, NonEmpty, Version, pageOf } from '../../shared/schemas.js';
import { CTCAE_TERMS, OTHER_TERM } from '../adverse-events/vocabulary.js';

/** A product's name as lots carry it (`productName`: NFC, one line, 1..200 characters); URL-encode it in the path. */
export const ProductParams = z.strictObject({
  productName: NonEmpty(200).meta({ description: 'The lots\' productName, URL-encoded (a `/` is `%2F`)', example: 'MSC-EV knee injection 2.5e11/mL' }),
});

const ListableTerm = z.enum(CTCAE_TERMS).exclude([OTHER_TERM]).meta({
  description: 'A CTCAE v5 term (domain.md); `Other, specify` names no reaction, so it cannot be expected',
});

export const ExpectedReactionsPut = z
  .strictObject({
    reactions: z
      .array(ListableTerm)
      .max(CTCAE_TERMS.length)
      .refine((a) => new Set(a).size === a.length, 'names a term more than once')
      .meta({ description: 'The whole reference list (investigator brochure): replaces the previous one; [] empties it' }),
  })
  .meta({ id: 'ExpectedReactionsPut', example: { reactions: ['Injection site reaction', 'Joint effusion', 'Arthralgia', 'Fever'] } });

export const ExpectedReactions = z
  .object({
    productName: z.string(),
    reactions: z.array(z.enum(CTCAE_TERMS)),
    version: Version,
    createdAt: DateTimeOutput,
    createdBy: z.string(),
    updatedAt: DateTimeOutput,
    updatedBy: z.string(),
  })
  .meta({ id: 'ExpectedReactions' });
export type ExpectedReactionsDto = z.infer<typeof ExpectedReactions>;

export const ExpectedReactionsHistory = pageOf(z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: ExpectedReactions })).meta({
  id: 'ExpectedReactionsHistory',
});
export const ExpectedReactionsHistoryQuery = z.strictObject(pageQuery);
