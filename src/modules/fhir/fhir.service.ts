import type { Actor } from '../../auth/principal.js';
import { BadRequest } from '../../shared/errors.js';
import type { Condition, SearchKey, SearchResult } from '../../shared/search.js';
import type { AdverseEventsService } from '../adverse-events/adverse-events.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { OutcomesService } from '../outcomes/outcomes.service.js';
import type { PatientsService } from '../patients/patients.service.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import { toFhirAdverseEvent, toFhirObservation, toFhirPatient, toFhirProcedure, type FhirResource } from './fhir.mappers.js';
import type { FhirSearch, FhirSearchPage } from './fhir.search.js';

export interface FhirDeps {
  patients: Pick<PatientsService, 'get' | 'visiblePatient' | 'find'>;
  procedures: Pick<ProceduresService, 'get' | 'find'>;
  outcomes: Pick<OutcomesService, 'find'>;
  adverseEvents: Pick<AdverseEventsService, 'find'>;
  lots: Pick<LotsService, 'get'>;
  search: Pick<FhirSearch, 'products'>;
}

/** The sections of `$everything`, in the order its pages list them. */
export const EVERYTHING_TYPES = ['Patient', 'Procedure', 'Observation', 'AdverseEvent'] as const;
type Section = (typeof EVERYTHING_TYPES)[number];

/** Where a section starts when a page ends exactly at the end of the one before (ids are UUIDv7: all above it). */
const SECTION_START = '00000000-0000-0000-0000-000000000000';

export interface EverythingRequest {
  /** Matches per page, 1..200. */
  count: number;
  /** Only resources last updated at or after this instant (ISO 8601). */
  since?: string;
  /** The types asked for (`_type`); all of EVERYTHING_TYPES and the products when undefined. */
  types?: string[];
  /** Where the page starts: the section's name as `key` and the last id seen in it. */
  after?: SearchKey;
}

/** Reads through the same services (and so the same tenancy and audit) as the REST API, mapped to R4. */
export function createFhirService({ patients, procedures, outcomes, adverseEvents, lots, search }: FhirDeps) {
  const value = (v: string) => ({ kind: 'value' as const, value: v });
  const sinceMatch = (since: string) => ({ kind: 'date' as const, prefix: 'ge' as const, start: since, end: since, dayAligned: false });

  /**
   * One section's next rows of the patient's record, audited as a search through its module: rows after `after`
   * in id order, `limit` at most, last updated at or after `since`.
   */
  async function section(
    actor: Actor,
    s: Section,
    patientId: string,
    limit: number,
    after: string | undefined,
    since: string | undefined,
  ): Promise<SearchResult<FhirResource> & { lotIds?: string[] }> {
    const key = after ? { key: null, id: after } : undefined;
    const filters = ['$everything', ...(since ? ['_since'] : [])];
    const of = <F extends string>(patientField: F, updatedField: F): Condition<F>[] => [
      { anyOf: [{ field: patientField, match: value(patientId) }] },
      ...(since ? [{ anyOf: [{ field: updatedField, match: sinceMatch(since) }] }] : []),
    ];
    const mapped = async <T>(page: Promise<SearchResult<T>>, map: (t: T) => FhirResource) => {
      const p = await page;
      return { items: p.items.map(map), next: p.next };
    };
    switch (s) {
      case 'Patient':
        // The record itself: a read (audited as one, 404 for a patient the clinic does not hold) unless _since filters it.
        if (!since) return after ? { items: [], next: null } : { items: [toFhirPatient(await patients.get(actor, patientId))], next: null };
        return mapped(patients.find(actor, { where: of('id', 'updatedAt'), sort: null, limit, after: key }, filters), toFhirPatient);
      case 'Procedure': {
        const page = await procedures.find(actor, { where: of('patientId', 'updatedAt'), sort: null, limit, after: key }, filters);
        return { items: page.items.map(toFhirProcedure), next: page.next, lotIds: page.items.map((p) => p.lotId) };
      }
      case 'Observation':
        return mapped(outcomes.find(actor, { where: of('patientId', 'recordedAt'), sort: null, limit, after: key }, filters), toFhirObservation);
      case 'AdverseEvent':
        return mapped(adverseEvents.find(actor, { where: of('patientId', 'updatedAt'), sort: null, limit, after: key }, filters), toFhirAdverseEvent);
    }
  }

  return {
    async patient(actor: Actor, id: string) {
      return toFhirPatient(await patients.get(actor, id));
    },

    async procedure(actor: Actor, id: string) {
      return toFhirProcedure(await procedures.get(actor, id));
    },

    async product(id: string) {
      await lots.get(id); // 404 for an unknown lot
      return (await search.products([id]))[0]!;
    },

    /**
     * `Patient/{id}/$everything` (R4 §14.4.3.x Patient-everything), one page: the patient, then its procedures,
     * observations and adverse events in that order (each by id), `count` of them at most, from where the cursor
     * says; the lots the page's procedures used are included (search.mode include). 404 for a patient the caller's
     * clinic does not hold. Each section read is audited as a search of its module.
     */
    async everything(actor: Actor, patientId: string, req: EverythingRequest): Promise<FhirSearchPage> {
      const wanted = EVERYTHING_TYPES.filter((t) => !req.types || req.types.includes(t));
      // The lots used come along only for a token that may read lots (everything the caller may see, no more).
      const withProducts = actor.scopes.has('lots:read') && (!req.types || req.types.includes('BiologicallyDerivedProduct'));
      const startAt = req.after ? EVERYTHING_TYPES.indexOf(req.after.key as Section) : 0;
      if (startAt < 0) throw new BadRequest('The cursor is not one this server gave out for this search.', [{ path: 'querystring._cursor', message: 'invalid cursor' }]);
      const matches: FhirResource[] = [];
      const products: Promise<FhirResource[]>[] = [];
      let next: SearchKey | null = null;
      // The first page's Patient section reads the patient (404 if the clinic does not hold it); any other page asks.
      const sections = wanted.filter((t) => EVERYTHING_TYPES.indexOf(t) >= startAt);
      const patientSaysVisible = sections[0] === 'Patient' && !req.after && !req.since;
      if (!patientSaysVisible) await patients.visiblePatient(actor, patientId);
      // That read is exactly one resource, so the next section runs beside it (a hidden patient's records are
      // out of the clinic's scope: that search finds nothing); the lots of a page's procedures load beside the rest.
      let pending: Promise<SearchResult<FhirResource> & { lotIds?: string[] }> | undefined;
      for (const [i, s] of sections.entries()) {
        const remaining = req.count - matches.length - (pending ? 1 : 0);
        const after = req.after && req.after.key === s ? req.after.id : undefined;
        if (remaining === 0) {
          next = { key: s, id: SECTION_START };
          break;
        }
        if (i === 0 && patientSaysVisible && sections.length > 1 && req.count > 1) {
          pending = section(actor, s, patientId, 1, undefined, undefined);
          continue;
        }
        const [first, page] = await Promise.all([pending, section(actor, s, patientId, remaining, after, req.since)]);
        if (first) matches.push(...first.items);
        pending = undefined;
        matches.push(...page.items);
        if (withProducts && page.lotIds?.length) {
          const loading = search.products([...new Set(page.lotIds)]);
          loading.catch(() => undefined); // awaited below; a later section's failure must not leave it unhandled
          products.push(loading);
        }
        if (page.next) {
          next = { key: s, id: page.next.id };
          break;
        }
      }
      if (pending) matches.push(...(await pending).items);
      return { matches, includes: (await Promise.all(products)).flat(), next };
    },
  };
}

export type FhirService = ReturnType<typeof createFhirService>;
