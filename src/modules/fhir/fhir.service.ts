import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../http/pagination.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound } from '../../shared/errors.js';
import type { AdverseEventsService } from '../adverse-events/adverse-events.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { OutcomesService } from '../outcomes/outcomes.service.js';
import type { PatientsService } from '../patients/patients.service.js';
import type { IdentifierToken, PatientFilters } from '../patients/patients.schemas.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import { OWN_IDENTIFIERS } from './fhir.codes.js';
import { toFhirAdverseEvent, toFhirObservation, toFhirPatient, toFhirProcedure, toFhirProduct, type FhirResource } from './fhir.mappers.js';

export interface FhirDeps {
  clock: Clock;
  patients: Pick<PatientsService, 'get' | 'search' | 'count'>;
  procedures: Pick<ProceduresService, 'get' | 'list' | 'count'>;
  outcomes: Pick<OutcomesService, 'forPatient' | 'countForPatient'>;
  adverseEvents: Pick<AdverseEventsService, 'list' | 'count'>;
  lots: Pick<LotsService, 'get' | 'getMany'>;
  donors: Pick<DonorsService, 'getMany'>;
}

export interface SearchPage {
  resources: FhirResource[];
  total: number;
  nextCursor: string | null;
}

/** Reads through the same services (and so the same tenancy and audit) as the REST API, mapped to R4. */
export function createFhirService({ patients, procedures, outcomes, adverseEvents, lots, donors }: FhirDeps) {
  /** Lots as BiologicallyDerivedProducts, with their donors' DINs: three queries whatever the count. */
  async function products(ids: string[]) {
    const lotDtos = await lots.getMany(ids);
    const donorDtos = await donors.getMany([...new Set(lotDtos.flatMap((l) => l.donorIds))]);
    const din = new Map(donorDtos.map((d) => [d.id, d.din]));
    return lotDtos.map((l) => toFhirProduct(l, l.donorIds.map((d) => din.get(d)!)));
  }

  async function product(id: string) {
    await lots.get(id); // 404 for an unknown lot
    return (await products([id]))[0]!;
  }

  /** A search on a patient the caller cannot see is empty, as for a patient with no records. */
  async function emptyIfHidden(run: () => Promise<SearchPage>): Promise<SearchPage> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof NotFound) return { resources: [], total: 0, nextCursor: null };
      throw err;
    }
  }

  async function allPages<T>(fetch: (page: PageRequest) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
    const out: T[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await fetch({ limit: 200, after });
      out.push(...page.items);
      if (!page.nextCursor) return out;
      after = Buffer.from(page.nextCursor, 'base64url').toString('utf8');
    }
  }

  return {
    async patient(actor: Actor, id: string) {
      return toFhirPatient(await patients.get(actor, id));
    },

    async searchPatients(actor: Actor, params: { identifier?: IdentifierToken; family?: string; birthdate?: string }, page: PageRequest): Promise<SearchPage> {
      const filters: PatientFilters = { familyName: params.family, birthDate: params.birthdate };
      const token = params.identifier;
      if (token) {
        // The MRN goes out as an identifier of the clinic's MRN system; searching by it finds the MRN.
        if (actor.clinicId && token.system === OWN_IDENTIFIERS.mrn(actor.clinicId) && token.code !== undefined) filters.mrn = token.code;
        else filters.identifier = token;
      }
      const [result, total] = await Promise.all([patients.search(actor, filters, page), patients.count(actor, filters)]);
      return { resources: result.items.map(toFhirPatient), total, nextCursor: result.nextCursor };
    },

    async procedure(actor: Actor, id: string) {
      return toFhirProcedure(await procedures.get(actor, id));
    },

    async searchProcedures(actor: Actor, patientId: string, page: PageRequest): Promise<SearchPage> {
      const [result, total] = await Promise.all([procedures.list(actor, { patientId }, page), procedures.count(actor, { patientId })]);
      return { resources: result.items.map(toFhirProcedure), total, nextCursor: result.nextCursor };
    },

    searchObservations(actor: Actor, patientId: string, page: PageRequest): Promise<SearchPage> {
      return emptyIfHidden(async () => {
        const [result, total] = await Promise.all([outcomes.forPatient(actor, patientId, page), outcomes.countForPatient(actor, patientId)]);
        return { resources: result.items.map(toFhirObservation), total, nextCursor: result.nextCursor };
      });
    },

    async searchAdverseEvents(actor: Actor, patientId: string, page: PageRequest): Promise<SearchPage> {
      const [result, total] = await Promise.all([adverseEvents.list(actor, { patientId }, page), adverseEvents.count(actor, { patientId })]);
      return { resources: result.items.map(toFhirAdverseEvent), total, nextCursor: result.nextCursor };
    },

    product,

    /** The patient with every procedure, observation and adverse event, and the lots they used. */
    async everything(actor: Actor, patientId: string): Promise<{ match: FhirResource[]; include: FhirResource[] }> {
      const patient = await patients.get(actor, patientId);
      const [procs, scores, events] = await Promise.all([
        allPages((page) => procedures.list(actor, { patientId }, page)),
        allPages((page) => outcomes.forPatient(actor, patientId, page)),
        allPages((page) => adverseEvents.list(actor, { patientId }, page)),
      ]);
      return {
        match: [toFhirPatient(patient), ...procs.map(toFhirProcedure), ...scores.map(toFhirObservation), ...events.map(toFhirAdverseEvent)],
        include: await products([...new Set(procs.map((p) => p.lotId))]),
      };
    },
  };
}

export type FhirService = ReturnType<typeof createFhirService>;
