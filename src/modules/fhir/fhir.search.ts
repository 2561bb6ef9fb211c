import type { Actor, Scope } from '../../auth/principal.js';
import { BadRequest, Forbidden } from '../../shared/errors.js';
import type { Condition, Match, SearchKey, SearchQuery, SearchResult, StringMatch, TokenMatch } from '../../shared/search.js';
import type { AdverseEventsService } from '../adverse-events/adverse-events.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { LotSummary } from '../lots/lots.schemas.js';
import type { PatientDto } from '../patients/patients.schemas.js';
import type { ProcedureDto } from '../procedures/procedures.schemas.js';
import type { OutcomeScore } from '../outcomes/outcomes.schemas.js';
import type { AdverseEventDto } from '../adverse-events/adverse-events.schemas.js';
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

  /** A token parameter over a field holding codes of one system: each token's codes, as equalities (mapped by `toValue`). */
  const codes =
    <F extends string>(field: F, system: string, vocabulary: readonly string[], toValue: (code: string) => string | boolean = (c) => c) =>
    (use: ParamUse): Condition<F> => ({
      anyOf: use.values.flatMap((v) => codesOf(v as TokenMatch, system, vocabulary).map((c) => ({ field, match: value(toValue(c)) }))),
    });

  /** Lots as BiologicallyDerivedProducts, with their donors' DINs (one query). */
  async function productsOf(lotDtos: LotSummary[]): Promise<FhirResource[]> {
    const din = await donors.dinsOf([...new Set(lotDtos.flatMap((l) => l.donorIds))]);
    return lotDtos.map((l) => toFhirProduct(l, l.donorIds.flatMap((d) => (din.has(d) ? [din.get(d)!] : []))));
  }

  /** The lots of `ids` as BiologicallyDerivedProducts, in that order: two queries whatever the count. */
  async function products(ids: string[]): Promise<FhirResource[]> {
    return ids.length === 0 ? [] : productsOf(await lots.summariesOf(ids));
  }

  const filterNames = (parsed: ParsedSearch) => [...new Set(parsed.uses.map((u) => u.def.name))];

  /** `_include=…:patient`: the patients of a page, read through the patients module (audited as a search). */
  async function includedPatients(actor: Actor, patientIds: string[]): Promise<FhirResource[]> {
    const ids = [...new Set(patientIds)];
    if (ids.length === 0) return [];
    const found = await patients.find(actor, { where: [{ anyOf: ids.map((id) => ({ field: 'id' as const, match: value(id) })) }], sort: null, limit: ids.length }, ['_include']);
    return found.items.map(toFhirPatient);
  }

  /**
   * One resource type's search over its module: each supported parameter's condition on the module's fields,
   * the `_sort` names' fields, the module's audited find and count, the FHIR mapping, and what `_include` /
   * `_revinclude` add to a page.
   */
  interface Binding<T, F extends string, S extends string> {
    params: Record<string, (use: ParamUse, actor: Actor) => Condition<F> | Promise<Condition<F>>>;
    sorts: Record<string, S>;
    find(actor: Actor, q: SearchQuery<F, S>, filters: string[]): Promise<SearchResult<T>>;
    count(actor: Actor, where: Condition<F>[]): Promise<number>;
    map(items: T[]): FhirResource[] | Promise<FhirResource[]>;
    include?(actor: Actor, parsed: ParsedSearch, items: T[]): Promise<Pick<FhirSearchPage, 'includes' | 'warning'>>;
  }

  /**
   * Runs a search: the page (limit 0 when only the total is asked for: still audited as a search) with, unless
   * `_total=none`, the count in the same statement; a page with no row to carry it counts apart (or is 0 on
   * the first page: nothing matched).
   */
  async function run<T, F extends string, S extends string>(b: Binding<T, F, S>, actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
    const where = await Promise.all(
      parsed.uses.map(async (use) => {
        const condition = b.params[use.def.name];
        if (!condition) throw new Error(`no binding for the search parameter ${use.def.name}`); // SEARCH_DEFS and the binding disagree
        return condition(use, actor);
      }),
    );
    const sort = parsed.sort ? { field: b.sorts[parsed.sort.name]!, descending: parsed.sort.descending } : null;
    const withTotal = parsed.total || parsed.countOnly;
    const page = await b.find(actor, { where, sort, after, limit: parsed.countOnly ? 0 : parsed.count, withTotal }, filterNames(parsed));
    const total = !withTotal ? undefined : (page.total ?? (after ? await b.count(actor, where) : 0));
    if (parsed.countOnly) return { matches: [], includes: [], total, next: null };
    const extra = b.include ? await b.include(actor, parsed, page.items) : { includes: [] };
    return { matches: await b.map(page.items), ...extra, total, next: page.next };
  }

  const reference = (use: ParamUse, actor: Actor) => referenceCondition(actor, use);

  const bindings = {
    Patient: {
      params: {
        _id: (use) => each(use, 'id'),
        identifier: (use, actor) => ({ anyOf: use.values.flatMap((v) => identifierMatches(actor, v as TokenMatch)) }),
        family: (use) => each(use, 'family'),
        given: (use) => each(use, 'given'),
        name: (use) => ({ anyOf: use.values.flatMap((v) => [{ field: 'family' as const, match: v as StringMatch }, { field: 'given' as const, match: v as StringMatch }]) }),
        birthdate: (use) => each(use, 'birthDate'),
        gender: codes('sex', ADMINISTRATIVE_GENDER, ['male', 'female', 'other', 'unknown']),
        _lastUpdated: (use) => each(use, 'updatedAt'),
      },
      sorts: { _lastUpdated: 'updatedAt' },
      find: (actor, q, filters) => patients.find(actor, q, filters),
      count: (actor, where) => patients.countMatching(actor, where),
      map: (items) => items.map(toFhirPatient),
      async include(actor, parsed, items) {
        if (!parsed.revInclude.includes('Procedure:patient') || items.length === 0) return { includes: [] };
        const procs = await procedures.find(
          actor,
          { where: [{ anyOf: items.map((p) => ({ field: 'patientId' as const, match: value(p.id) })) }], sort: null, limit: MAX_REVINCLUDED },
          ['_revinclude'],
        );
        const warning = procs.next ? `Only the first ${MAX_REVINCLUDED} procedures of these patients are included; search Procedure?patient= for the rest.` : undefined;
        return { includes: procs.items.map(toFhirProcedure), ...(warning ? { warning } : {}) };
      },
    } satisfies Binding<PatientDto, 'id' | 'family' | 'given' | 'birthDate' | 'sex' | 'identifier' | 'mrn' | 'updatedAt', 'updatedAt'>,
    Procedure: {
      params: {
        _id: (use) => each(use, 'id'),
        patient: reference,
        subject: reference,
        date: (use) => each(use, 'performedAt'),
        status: codes('status', EVENT_STATUS, ['completed', 'entered-in-error']),
        _lastUpdated: (use) => each(use, 'updatedAt'),
      },
      sorts: { date: 'performedAt', _lastUpdated: 'updatedAt' },
      find: (actor, q, filters) => procedures.find(actor, q, filters),
      count: (actor, where) => procedures.countMatching(actor, where),
      map: (items) => items.map(toFhirProcedure),
      include: async (actor, parsed, items) => ({ includes: parsed.include.includes('Procedure:patient') ? await includedPatients(actor, items.map((p) => p.patientId)) : [] }),
    } satisfies Binding<ProcedureDto, 'id' | 'patientId' | 'performedAt' | 'status' | 'updatedAt', 'performedAt' | 'updatedAt'>,
    Observation: {
      params: {
        _id: (use) => each(use, 'id'),
        patient: reference,
        subject: reference,
        code: (use) => ({ anyOf: use.values.flatMap((v) => instrumentsOf(v as TokenMatch).map((c) => ({ field: 'instrument' as const, match: value(c) }))) }),
        date: (use) => each(use, 'assessedAt'),
        _lastUpdated: (use) => each(use, 'recordedAt'),
      },
      sorts: { date: 'assessedAt', _lastUpdated: 'recordedAt' },
      find: (actor, q, filters) => outcomes.find(actor, q, filters),
      count: (actor, where) => outcomes.countMatching(actor, where),
      map: (items) => items.map(toFhirObservation),
      include: async (actor, parsed, items) => ({ includes: parsed.include.includes('Observation:patient') ? await includedPatients(actor, items.map((o) => o.patientId)) : [] }),
    } satisfies Binding<OutcomeScore, 'id' | 'patientId' | 'instrument' | 'assessedAt' | 'recordedAt', 'assessedAt' | 'recordedAt'>,
    AdverseEvent: {
      params: {
        _id: (use) => each(use, 'id'),
        subject: reference,
        date: (use) => each(use, 'onsetAt'),
        seriousness: codes('serious', AE_SERIOUSNESS, ['Serious', 'Non-serious'], (c) => c === 'Serious'),
        _lastUpdated: (use) => each(use, 'updatedAt'),
      },
      sorts: { date: 'onsetAt', _lastUpdated: 'updatedAt' },
      find: (actor, q, filters) => adverseEvents.find(actor, q, filters),
      count: (actor, where) => adverseEvents.countMatching(actor, where),
      map: (items) => items.map(toFhirAdverseEvent),
    } satisfies Binding<AdverseEventDto, 'id' | 'patientId' | 'onsetAt' | 'serious' | 'updatedAt', 'onsetAt' | 'updatedAt'>,
    BiologicallyDerivedProduct: {
      params: {
        _id: (use) => each(use, 'id'),
        identifier: async (use) => ({ anyOf: (await Promise.all(use.values.map((v) => productIdentifierMatches(v as TokenMatch)))).flat() }),
        _lastUpdated: (use) => each(use, 'updatedAt'),
      },
      sorts: { _lastUpdated: 'updatedAt' },
      find: (_actor, q) => lots.find(q),
      count: (_actor, where) => lots.countMatching(where),
      map: (items) => productsOf(items),
    } satisfies Binding<LotSummary, 'id' | 'lotNumber' | 'donorId' | 'updatedAt', 'updatedAt'>,
  };

  return {
    /** One page of a search on `type` (SEARCH_DEFS[type]'s parameters, parsed), as the Bundle needs it. */
    search(type: SearchType, actor: Actor, parsed: ParsedSearch, after?: SearchKey): Promise<FhirSearchPage> {
      return run(bindings[type] as unknown as Binding<unknown, string, string>, actor, parsed, after);
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
