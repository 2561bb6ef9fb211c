import type { Actor } from '../auth/principal.js';
import { Forbidden } from './errors.js';

/** The caller's clinic, for records that belong to one. Tokens without `clinic_id` cannot act on them. */
export function clinicOf(actor: Actor): string {
  if (!actor.clinicId) {
    throw new Forbidden('This operation acts on one clinic\'s records; the token has no clinic_id claim.', 'clinic-required');
  }
  return actor.clinicId;
}
