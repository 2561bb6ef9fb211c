import type { Actor, Scope } from '../../auth/principal.js';
import { BadRequest, Forbidden } from '../../shared/errors.js';
import type { Condition, Match, SearchKey, SearchQuery, SearchResult, StringMatch, TokenMatch } from '../../shared/search.js';
import type { AdverseEventsService } from '../adverse-events/adverse-events.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { LotSummary } from '../lots/lots.schemas.js';
import type { OutcomesService } from '../outcomes/outcomes.service.js';
import { INSTRUMENTS, INSTRUMENT_CODES } from '../outcomes/instruments.js';
import type { PatientsService } from '../patients/patients.service.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import { AE_SERIOUSNESS, LOINC, OWN_CODES, OWN_IDENTIFIERS } from './fhir.codes.js';
import { toFhirAdverseEvent, toFhirObservation, toFhirPatient, toFhirProcedure, toFhirProduct, type FhirResource } from './fhir.mappers.js';
import type { ParamDef, ParamUse, ParsedSearch, ReferenceValue, ResourceSearchDef } from './search-params.js';

/**
 * FHIR R4 search over the modules' criteria (shared/search.ts): which parameters each resource type supports
 * (contract.md "FHIR R4: search"), what each means in the module's own fields, and the includes.
 */

export const ADMINISTRATIVE_GENDER = 'http://hl7.org/fhir/administrative-gender';
export const EVENT_STATUS = 'http://hl7.org/fhir/event-status';
const LOT_NUMBER_SYSTEM = OWN_IDENTIFIERS.lotNumber('');

/** How many patients a chained parameter (`patient.identifier`) may name before the search is refused as too broad. */
export const MAX_CHAINED_PATIENTS = 1000;
/** How many resources `_revinclude` adds to one page at most; past that the Bundle says it left some out. */
export const MAX_REVINCLUDED = 1000;

const IDS = '_id: one id or several separated by commas (ids here are UUIDs)';
const LAST_UPDATED = 'meta.lastUpdated, with prefixes eq ne lt gt le ge sa eb; a date without a time is the UTC day; YYYY and YYYY-MM cover the year and the month';
const dateDoc = (what: string) => `${what}, with prefixes eq ne lt gt le ge sa eb and the value's precision as its range (a date without a time is the UTC day)`;
const referenceDoc = (param: string) =>
  `Patient/{id} or the id; several separated by commas; chained ${param}.identifier=system|value (the patient's identifier, the MRN under the clinic's MRN system too) finds the patient's records without knowing our id`;
const STRING_DOC = 'Case-, accent- and Unicode-form-insensitive prefix (Müller, muller and MULLER match Mül); :exact compares exactly (after NFC); :contains matches anywhere';

export const SEARCH_DEFS = {
  Patient: {
    params: [
      { name: '_id', type: 'id', documentation: IDS },
      { name: 'identifier', type: 'token', documentation: 'system|value, system| (any value), |value (no system: none here) or value (any system); the MRN is an identifier of the system urn:exosome-records:fhir:identifier:mrn:{clinic}' },
      { name: 'family', type: 'string', documentation: `Family name. ${STRING_DOC}` },
      { name: 'given', type: 'string', documentation: `Given name. ${STRING_DOC}` },
      { name: 'name', type: 'string', documentation: `Family or given name. ${STRING_DOC}` },
      { name: 'birthdate', type: 'date', dateOnly: true, documentation: dateDoc('Birth date (dates only: a time is refused)') },
      { name: 'gender', type: 'token', documentation: `male | female | other | unknown (${ADMINISTRATIVE_GENDER})` },
      { name: '_lastUpdated', type: 'date', documentation: LAST_UPDATED },
    ],
    sorts: ['_lastUpdated'],
    includes: [],
    revIncludes: ['Procedure:patient'],
  },
  Procedure: {
    params: [
      { name: '_id', type: 'id', documentation: IDS },
      { name: 'patient', type: 'reference', chains: ['identifier'], documentation: referenceDoc('patient') },
      { name: 'subject', type: 'reference', chains: ['identifier'], documentation: referenceDoc('subject') },
      { name: 'date', type: 'date', documentation: dateDoc('performedDateTime') },
      { name: 'status', type: 'token', documentation: `completed | entered-in-error (${EVENT_STATUS})` },
      { name: '_lastUpdated', type: 'date', documentation: LAST_UPDATED },
    ],
    sorts: ['date', '_lastUpdated'],
    includes: ['Procedure:patient'],
    revIncludes: [],
  },
  Observation: {
    params: [
      { name: '_id', type: 'id', documentation: IDS },
      { name: 'patient', type: 'reference', chains: ['identifier'], documentation: referenceDoc('patient') },
      { name: 'subject', type: 'reference', chains: ['identifier'], documentation: referenceDoc('subject') },
      { name: 'code', type: 'token', documentation: `The instrument: its LOINC code (${LOINC}) where it has one, or its code under ${OWN_CODES.instrument}` },
      { name: 'date', type: 'date', documentation: dateDoc('effectiveDateTime (when the score was assessed)') },
      { name: '_lastUpdated', type: 'date', documentation: `${LAST_UPDATED} (when the score was recorded; scores do not change)` },
    ],
    sorts: ['date', '_lastUpdated'],
    includes: ['Observation:patient'],
    revIncludes: [],
  },
  AdverseEvent: {
    params: [
      { name: '_id', type: 'id', documentation: IDS },
      { name: 'subject', type: 'reference', chains: ['identifier'], documentation: referenceDoc('subject') },
      { name: 'date', type: 'date', documentation: dateDoc('date (the onset)') },
      { name: 'seriousness', type: 'token', documentation: `Serious | Non-serious (${AE_SERIOUSNESS})` },
      { name: '_lastUpdated', type: 'date', documentation: LAST_UPDATED },
    ],
    sorts: ['date', '_lastUpdated'],
    includes: [],
    revIncludes: [],
  },
  BiologicallyDerivedProduct: {
    params: [
      { name: '_id', type: 'id', documentation: IDS },
      {
        name: 'identifier',
        type: 'token',
        documentation: `The lot number under ${LOT_NUMBER_SYSTEM}{manufacturer, URI-encoded}, or a donor's ISBT 128 DIN under ${OWN_IDENTIFIERS.din}; a bare value matches either`,
      },
      { name: '_lastUpdated', type: 'date', documentation: LAST_UPDATED },
    ],
    sorts: ['_lastUpdated'],
    includes: [],
    revIncludes: [],
  },
} satisfies Record<string, ResourceSearchDef & { params: readonly ParamDef[] }>;

export type SearchType = keyof typeof SEARCH_DEFS;

/** The scope each _include / _revinclude needs beyond the search's own: what it adds is another resource type. */
const INCLUDE_SCOPES: Record<string, Scope> = {
  'Procedure:patient': 'patients:read',
  'Observation:patient': 'patients:read',
};
const REVINCLUDE_SCOPES: Record<string, Scope> = { 'Procedure:patient': 'clinical:read' };

/** 403 when the search asks to include resources the token may not read (checked before anything runs). */
export function checkIncludeScopes(actor: Actor, parsed: ParsedSearch): void {
  const needed = [...parsed.include.map((i) => [i, INCLUDE_SCOPES[i]] as const), ...parsed.revInclude.map((i) => [i, REVINCLUDE_SCOPES[i]] as const)];
  for (const [what, scope] of needed) {
    if (scope && !actor.scopes.has(scope)) throw new Forbidden(`Including ${what} needs the scope ${scope}, which the token lacks.`, 'insufficient-scope');
  }
}

export interface FhirSearchDeps {
  patients: Pick<PatientsService, 'find' | 'countMatching' | 'idsMatching'>;
  procedures: Pick<ProceduresService, 'find' | 'countMatching'>;
  outcomes: Pick<OutcomesService, 'find' | 'countMatching'>;
  adverseEvents: Pick<AdverseEventsService, 'find' | 'countMatching'>;
  lots: Pick<LotsService, 'find' | 'countMatching' | 'summariesOf'>;
  donors: Pick<DonorsService, 'list' | 'dinsOf'>;
}

/** One page of a search: the matches, included resources (and a warning when includes were cut), the total. */
export interface FhirSearchPage {
  matches: FhirResource[];
  includes: FhirResource[];
  /** Set when an _include/_revinclude was cut short (search.mode `outcome` in the Bundle). */
  warning?: string;
  total?: number;
  next: SearchKey | null;
}

/** Codes of a token against a vocabulary: none for another system or no system; all of them for `system|`. */
function codesOf(token: TokenMatch, system: string, codes: readonly string[]): string[] {
  if (token.system === null || (token.system !== undefined && token.system !== system)) return [];
  if (token.code === undefined) return [...codes];
  return codes.includes(token.code) ? [token.code] : [];
}

const value = (v: string | boolean): Match => ({ kind: 'value', value: v });

export function createFhirSearch({ patients, procedures, outcomes, adverseEvents, lots, donors }: FhirSearchDeps) {
  /** The patients a reference names: ids as given, a chained identifier through the patients module. */
  async function patientIdsOf(actor: Actor, ref: ReferenceValue): Promise<string[]> {
    if (ref.kind === 'id') return [ref.id];
    const ids = await patients.idsMatching(actor, [{ anyOf: identifierMatches(actor, ref.token) }], MAX_CHAINED_PATIENTS + 1);
    if (ids.length > MAX_CHAINED_PATIENTS) {
      throw new BadRequest(`The chained identifier names more than ${MAX_CHAINED_PATIENTS} patients; give system|value.`, [
        { path: `querystring.${ref.chain}`, message: 'too broad' },
      ]);
    }
    return ids;
  }

  /** A patient identifier token: the identifiers list, and the MRN for its clinic system or any system. */
  function identifierMatches(actor: Actor, token: TokenMatch): Condition<'identifier' | 'mrn'>['anyOf'] {
    const mrnSystem = actor.clinicId ? OWN_IDENTIFIERS.mrn(actor.clinicId) : undefined;
    const out: Condition<'identifier' | 'mrn'>['anyOf'] = [{ field: 'identifier', match: token }];
    if (token.system === undefined || token.system === mrnSystem) out.push({ field: 'mrn', match: { kind: 'token', code: token.code } });
    return out;
  }

  /** A reference parameter (patient, subject, or their chain) as a condition on the module's patientId field. */
  async function referenceCondition(actor: Actor, use: ParamUse): Promise<Condition<'patientId'>> {
    const ids = (await Promise.all(use.values.map((v) => patientIdsOf(actor, v as ReferenceValue)))).flat();
    return { anyOf: ids.map((id) => ({ field: 'patientId' as const, match: value(id) })) };
  }

  const each = <F extends string>(use: ParamUse, field: F): Condition<F> => ({ anyOf: use.values.map((v) => ({ field, match: v as Match })) });

  /** Every parameter's condition (ANDed) for one resource type, `map` giving each parameter's. */
  async function conditions<F extends string>(
    uses: ParamUse[],
    map: (use: ParamUse) => Condition<F> | Promise<Condition<F>>,
  ): Promise<Condition<F>[]> {
    return Promise.all(uses.map(async (use) => map(use)));
  }

  /** Lots as BiologicallyDerivedProducts, with their donors' DINs (one query). */
  async function productsOf(lotDtos: LotSummary[]): Promise<FhirResource[]> {
    const din = await donors.dinsOf([...new Set(lotDtos.flatMap((l) => l.donorIds))]);
    return lotDtos.map((l) => toFhirProduct(l, l.donorIds.flatMap((d) => (din.has(d) ? [din.get(d)!] : []))));
  }

  /** The lots of `ids` as BiologicallyDerivedProducts, in that order: two queries whatever the count. */
  async function products(ids: string[]): Promise<FhirResource[]> {
    return ids.length === 0 ? [] : productsOf(await lots.summariesOf(ids));
  }

  const sortOf = <S extends string>(parsed: ParsedSearch, fields: Record<string, S>) =>
    parsed.sort ? { field: fields[parsed.sort.name]!, descending: parsed.sort.descending } : null;

  const filterNames = (parsed: ParsedSearch) => [...new Set(parsed.uses.map((u) => u.def.name))];

  /**
   * Runs the page (limit 0 when only the total is asked for: still audited as a search) with, unless
   * `_total=none`, the count in the same statement; a page with no row to carry it counts apart (or is 0 on the
   * first page: nothing matched).
   */
  async function run<T, F extends string, S extends string>(
    parsed: ParsedSearch,
    query: Omit<SearchQuery<F, S>, 'limit' | 'withTotal'>,
    find: (q: SearchQuery<F, S>) => Promise<SearchResult<T>>,
    count: (where: Condition<F>[]) => Promise<number>,
  ): Promise<{ page: SearchResult<T>; total?: number }> {
    const withTotal = parsed.total || parsed.countOnly;
    const page = await find({ ...query, limit: parsed.countOnly ? 0 : parsed.count, withTotal });
    const total = !withTotal ? undefined : (page.total ?? (query.after ? await count(query.where) : 0));
    return { page: parsed.countOnly ? { items: [], next: null } : page, total };
  }

  /** `_include=…:patient`: the patients of a page, read through the patients module (audited as a search). */
  async function includedPatients(actor: Actor, patientIds: string[]): Promise<FhirResource[]> {
    const ids = [...new Set(patientIds)];
    if (ids.length === 0) return [];
    const found = await patients.find(actor, { where: [{ anyOf: ids.map((id) => ({ field: 'id' as const, match: value(id) })) }], sort: null, limit: ids.length }, ['_include']);
    return found.items.map(toFhirPatient);
  }

  return {
    async Patient(actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      const where = await conditions<'id' | 'family' | 'given' | 'birthDate' | 'sex' | 'identifier' | 'mrn' | 'updatedAt'>(parsed.uses, (use) => {
        switch (use.def.name) {
          case '_id':
            return each(use, 'id');
          case 'identifier':
            return { anyOf: use.values.flatMap((v) => identifierMatches(actor, v as TokenMatch)) };
          case 'family':
            return each(use, 'family');
          case 'given':
            return each(use, 'given');
          case 'name':
            return { anyOf: use.values.flatMap((v) => [{ field: 'family' as const, match: v as StringMatch }, { field: 'given' as const, match: v as StringMatch }]) };
          case 'birthdate':
            return each(use, 'birthDate');
          case 'gender':
            return { anyOf: use.values.flatMap((v) => codesOf(v as TokenMatch, ADMINISTRATIVE_GENDER, ['male', 'female', 'other', 'unknown']).map((c) => ({ field: 'sex' as const, match: value(c) }))) };
          default:
            return each(use, 'updatedAt');
        }
      });
      const { page, total } = await run(parsed, { where, sort: sortOf(parsed, { _lastUpdated: 'updatedAt' as const }), after }, (q) => patients.find(actor, q, filterNames(parsed)), (w) => patients.countMatching(actor, w));
      const result: FhirSearchPage = { matches: page.items.map(toFhirPatient), includes: [], total, next: page.next };
      if (parsed.revInclude.includes('Procedure:patient') && page.items.length) {
        const procs = await procedures.find(
          actor,
          { where: [{ anyOf: page.items.map((p) => ({ field: 'patientId' as const, match: value(p.id) })) }], sort: null, limit: MAX_REVINCLUDED },
          ['_revinclude'],
        );
        result.includes = procs.items.map(toFhirProcedure);
        if (procs.next) result.warning = `Only the first ${MAX_REVINCLUDED} procedures of these patients are included; search Procedure?patient= for the rest.`;
      }
      return result;
    },

    async Procedure(actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      const where = await conditions<'id' | 'patientId' | 'performedAt' | 'status' | 'updatedAt'>(parsed.uses, (use) => {
        switch (use.def.name) {
          case '_id':
            return each(use, 'id');
          case 'patient':
          case 'subject':
            return referenceCondition(actor, use);
          case 'date':
            return each(use, 'performedAt');
          case 'status':
            return { anyOf: use.values.flatMap((v) => codesOf(v as TokenMatch, EVENT_STATUS, ['completed', 'entered-in-error']).map((c) => ({ field: 'status' as const, match: value(c) }))) };
          default:
            return each(use, 'updatedAt');
        }
      });
      const sort = sortOf(parsed, { date: 'performedAt' as const, _lastUpdated: 'updatedAt' as const });
      const { page, total } = await run(parsed, { where, sort, after }, (q) => procedures.find(actor, q, filterNames(parsed)), (w) => procedures.countMatching(actor, w));
      const includes = parsed.include.includes('Procedure:patient') ? await includedPatients(actor, page.items.map((p) => p.patientId)) : [];
      return { matches: page.items.map(toFhirProcedure), includes, total, next: page.next };
    },

    async Observation(actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      const where = await conditions<'id' | 'patientId' | 'instrument' | 'assessedAt' | 'recordedAt'>(parsed.uses, (use) => {
        switch (use.def.name) {
          case '_id':
            return each(use, 'id');
          case 'patient':
          case 'subject':
            return referenceCondition(actor, use);
          case 'code':
            return { anyOf: use.values.flatMap((v) => instrumentsOf(v as TokenMatch).map((c) => ({ field: 'instrument' as const, match: value(c) }))) };
          case 'date':
            return each(use, 'assessedAt');
          default:
            return each(use, 'recordedAt');
        }
      });
      const sort = sortOf(parsed, { date: 'assessedAt' as const, _lastUpdated: 'recordedAt' as const });
      const { page, total } = await run(parsed, { where, sort, after }, (q) => outcomes.find(actor, q, filterNames(parsed)), (w) => outcomes.countMatching(actor, w));
      const includes = parsed.include.includes('Observation:patient') ? await includedPatients(actor, page.items.map((o) => o.patientId)) : [];
      return { matches: page.items.map(toFhirObservation), includes, total, next: page.next };
    },

    async AdverseEvent(actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      const where = await conditions<'id' | 'patientId' | 'onsetAt' | 'serious' | 'updatedAt'>(parsed.uses, (use) => {
        switch (use.def.name) {
          case '_id':
            return each(use, 'id');
          case 'subject':
            return referenceCondition(actor, use);
          case 'date':
            return each(use, 'onsetAt');
          case 'seriousness':
            return {
              anyOf: use.values.flatMap((v) => codesOf(v as TokenMatch, AE_SERIOUSNESS, ['Serious', 'Non-serious']).map((c) => ({ field: 'serious' as const, match: value(c === 'Serious') }))),
            };
          default:
            return each(use, 'updatedAt');
        }
      });
      const sort = sortOf(parsed, { date: 'onsetAt' as const, _lastUpdated: 'updatedAt' as const });
      const { page, total } = await run(parsed, { where, sort, after }, (q) => adverseEvents.find(actor, q, filterNames(parsed)), (w) => adverseEvents.countMatching(actor, w));
      return { matches: page.items.map(toFhirAdverseEvent), includes: [], total, next: page.next };
    },

    async BiologicallyDerivedProduct(actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      const where = await conditions<'id' | 'lotNumber' | 'donorId' | 'updatedAt'>(parsed.uses, async (use) => {
        switch (use.def.name) {
          case '_id':
            return each(use, 'id');
          case 'identifier':
            return { anyOf: (await Promise.all(use.values.map((v) => productIdentifierMatches(v as TokenMatch)))).flat() };
          default:
            return each(use, 'updatedAt');
        }
      });
      const { page, total } = await run(parsed, { where, sort: sortOf(parsed, { _lastUpdated: 'updatedAt' as const }), after }, (q) => lots.find(q), (w) => lots.countMatching(w));
      return { matches: await productsOf(page.items), includes: [], total, next: page.next };
    },

    products,
  };

  /** An Observation code: LOINC codes and our instrument codes, as the instruments they name. */
  function instrumentsOf(token: TokenMatch): string[] {
    const byLoinc = Object.entries(INSTRUMENTS).filter(([, i]) => i.loinc !== null);
    const loinc = codesOf(token, LOINC, byLoinc.map(([, i]) => i.loinc!)).map((code) => byLoinc.find(([, i]) => i.loinc === code)![0]);
    return [...new Set([...loinc, ...codesOf(token, OWN_CODES.instrument, INSTRUMENT_CODES)])];
  }

  /** A product identifier: the lot number (its system names the manufacturer) or a donor's DIN. */
  async function productIdentifierMatches(token: TokenMatch): Promise<Condition<'lotNumber' | 'donorId'>['anyOf']> {
    const out: Condition<'lotNumber' | 'donorId'>['anyOf'] = [];
    if (token.system === undefined) out.push({ field: 'lotNumber', match: { kind: 'token', code: token.code } });
    else if (token.system !== null && token.system.startsWith(LOT_NUMBER_SYSTEM)) {
      const manufacturer = safeDecode(token.system.slice(LOT_NUMBER_SYSTEM.length));
      if (manufacturer !== undefined) out.push({ field: 'lotNumber', match: { kind: 'token', system: manufacturer, code: token.code } });
    }
    if (token.system === OWN_IDENTIFIERS.din && token.code === undefined) out.push({ field: 'lotNumber', match: { kind: 'token' } }); // every lot has donors
    else if ((token.system === undefined || token.system === OWN_IDENTIFIERS.din) && token.code !== undefined) {
      const found = await donors.list(token.code, { limit: 200 });
      out.push(...found.items.filter((d) => d.din === token.code).map((d) => ({ field: 'donorId' as const, match: value(d.id) })));
    }
    return out;
  }
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export type FhirSearch = ReturnType<typeof createFhirSearch>;
