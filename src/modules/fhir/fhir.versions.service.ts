import type { Actor } from '../../auth/principal.js';
import { NotFound } from '../../shared/errors.js';
import type { AdverseEventsService } from '../adverse-events/adverse-events.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { LotDto } from '../lots/lots.schemas.js';
import type { LotsService } from '../lots/lots.service.js';
import type { OutcomeDto } from '../outcomes/outcomes.schemas.js';
import type { OutcomesService } from '../outcomes/outcomes.service.js';
import type { PatientsService } from '../patients/patients.service.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import { toFhirAdverseEvent, toFhirObservation, toFhirPatient, toFhirProcedure, toFhirProduct, type FhirResource } from './fhir.mappers.js';

/** The resource types whose versions the facade serves (vread and instance history). */
export const VERSIONED_TYPES = ['Patient', 'Procedure', 'Observation', 'AdverseEvent', 'BiologicallyDerivedProduct'] as const;
export type VersionedType = (typeof VERSIONED_TYPES)[number];

/** The types read here rather than in fhir.service.ts (the reads that searches' fullUrls point at). */
export type ReadType = 'Observation' | 'AdverseEvent';

export interface FhirVersionsDeps {
  patients: Pick<PatientsService, 'history' | 'version'>;
  procedures: Pick<ProceduresService, 'history' | 'version'>;
  adverseEvents: Pick<AdverseEventsService, 'get' | 'history' | 'version'>;
  outcomes: Pick<OutcomesService, 'get'>;
  lots: Pick<LotsService, 'history' | 'version'>;
  donors: Pick<DonorsService, 'getMany'>;
}

/** One version of a resource: the resource as it was (meta.versionId and meta.lastUpdated set) and its number. */
export interface FhirVersion {
  version: number;
  resource: FhirResource;
}

/** A page of versions, newest first; `nextKey` (the last version's number as text) asks for the older ones, null on the last page. */
export interface VersionHistoryPage {
  versions: FhirVersion[];
  nextKey: string | null;
}

/** `limit` versions, newest first, older than version `before` when given (from a previous page's cursor). */
export interface VersionHistoryRequest {
  limit: number;
  before?: number;
}

/** A page of module versions (VersionSnapshot) as the module services answer it. */
interface SnapshotPage<T> {
  items: { version: number; resource: T }[];
  nextKey: string | null;
}

/** How one resource type's versions are fetched (through its module service) and mapped. */
interface VersionSource {
  vread(actor: Actor, id: string, version: number): Promise<FhirResource>;
  history(actor: Actor, id: string, page: VersionHistoryRequest): Promise<VersionHistoryPage>;
}

/**
 * vread, instance history and the Observation and AdverseEvent reads of the FHIR R4 facade (R4 §3.1.0.3
 * vread, §3.1.0.4 history), through the module services, so with the same tenancy (another clinic's record is
 * a 404) and audit (a history read, as the REST `/history` routes record it) as the REST API. Versions are
 * the REST representations kept by the history module (record_versions), mapped with the same mappers as the
 * reads. Outcome scores are immutable: their one version is 1.
 */
export function createFhirVersions({ patients, procedures, adverseEvents, outcomes, lots, donors }: FhirVersionsDeps) {
  const toPageRequest = (page: VersionHistoryRequest) => ({ limit: page.limit, after: page.before, newestFirst: true });

  /** A source over a module's `version` and `history` (newest first) with a pure mapper. */
  function mapped<T>(
    module: {
      version(actor: Actor, id: string, version: number): Promise<{ version: number; resource: T }>;
      history(actor: Actor, id: string, page: { limit: number; after?: number; newestFirst?: boolean }): Promise<SnapshotPage<T>>;
    },
    map: (dtos: T[]) => Promise<FhirResource[]>,
  ): VersionSource {
    return {
      async vread(actor, id, version) {
        return (await map([(await module.version(actor, id, version)).resource]))[0]!;
      },
      async history(actor, id, page) {
        const result = await module.history(actor, id, toPageRequest(page));
        const resources = await map(result.items.map((v) => v.resource));
        return { versions: result.items.map((v, i) => ({ version: v.version, resource: resources[i]! })), nextKey: result.nextKey };
      },
    };
  }

  const pure =
    <T>(f: (dto: T) => FhirResource) =>
    async (dtos: T[]) =>
      dtos.map(f);

  /** Lots as BiologicallyDerivedProducts with their donors' DINs: one donor query for the whole page. */
  async function products(dtos: LotDto[]): Promise<FhirResource[]> {
    const donorDtos = await donors.getMany([...new Set(dtos.flatMap((l) => l.donorIds))]);
    const din = new Map(donorDtos.map((d) => [d.id, d.din]));
    return dtos.map((l) => toFhirProduct(l, l.donorIds.flatMap((d) => (din.has(d) ? [din.get(d)!] : []))));
  }

  /** An outcome score as an Observation with its one version (the mapper gives versionId "1", lastUpdated when recorded). */
  const observation = (o: OutcomeDto): FhirResource => toFhirObservation(o);

  const observations: VersionSource = {
    async vread(actor, id, version) {
      // A score has one version: any other is 404 before anything is read, so no read entry is written for it
      // (and another clinic's score is as unknown as a version that never was).
      if (version !== 1) throw new NotFound('Observation version');
      return observation(await outcomes.get(actor, id));
    },
    async history(actor, id, page) {
      const resource = observation(await outcomes.get(actor, id));
      const versions = page.before === undefined || page.before > 1 ? [{ version: 1, resource }] : [];
      return { versions, nextKey: null };
    },
  };

  const sources: Record<VersionedType, VersionSource> = {
    Patient: mapped(patients, pure(toFhirPatient)),
    Procedure: mapped(procedures, pure(toFhirProcedure)),
    AdverseEvent: mapped(adverseEvents, pure(toFhirAdverseEvent)),
    BiologicallyDerivedProduct: mapped(lots, products),
    Observation: observations,
  };

  return {
    /**
     * Reads an Observation (an outcome score, versionId "1") or an AdverseEvent of the caller's clinic.
     * NotFound (404) for an unknown id or another clinic's record.
     */
    async read(actor: Actor, type: ReadType, id: string): Promise<FhirResource> {
      if (type === 'Observation') return observation(await outcomes.get(actor, id));
      return toFhirAdverseEvent(await adverseEvents.get(actor, id));
    },

    /**
     * vread (R4 §3.1.0.3): version `version` of the resource, as it was. NotFound (404) for an unknown
     * resource, another clinic's, or a version it never had.
     */
    vread(actor: Actor, type: VersionedType, id: string, version: number): Promise<FhirResource> {
      return sources[type].vread(actor, id, version);
    },

    /**
     * Instance history (R4 §3.1.0.4): the resource's versions, newest first, a page at a time. NotFound (404)
     * for an unknown resource or another clinic's.
     */
    history(actor: Actor, type: VersionedType, id: string, page: VersionHistoryRequest): Promise<VersionHistoryPage> {
      return sources[type].history(actor, id, page);
    },
  };
}

export type FhirVersions = ReturnType<typeof createFhirVersions>;
