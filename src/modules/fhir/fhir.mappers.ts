import type { AdverseEventDto } from '../adverse-events/adverse-events.schemas.js';
import { GRADE_NAMES } from '../adverse-events/vocabulary.js';
import type { LotSummary } from '../lots/lots.schemas.js';
import { INSTRUMENTS } from '../outcomes/instruments.js';
import type { OutcomeScore } from '../outcomes/outcomes.schemas.js';
import type { PatientDto } from '../patients/patients.schemas.js';
import type { ProcedureDto } from '../procedures/procedures.schemas.js';
import { BODY_SITES, LATERALITIES, ROUTES } from '../procedures/vocabulary.js';
import {
  AE_CAUSALITY,
  AE_OUTCOME,
  AE_SERIOUSNESS,
  AE_SEVERITY,
  EXTENSIONS,
  ICD10CM,
  LOINC,
  OBSERVATION_CATEGORY,
  OWN_CODES,
  OWN_IDENTIFIERS,
  SNOMED,
  UCUM,
  V2_0203,
} from './fhir.codes.js';

/** Pure mappers from the API's records to FHIR R4 resources (domain.md, FHIR mapping notes). */
export type FhirResource = { resourceType: string; id?: string } & Record<string, unknown>;

const meta = (version: number, lastUpdated: string) => ({ versionId: String(version), lastUpdated });
const ref = (type: string, id: string) => ({ reference: `${type}/${id}` });

export function toFhirPatient(p: PatientDto): FhirResource {
  return {
    resourceType: 'Patient',
    id: p.id,
    meta: meta(p.version, p.updatedAt),
    identifier: [
      {
        use: 'usual',
        type: { coding: [{ system: V2_0203, code: 'MR', display: 'Medical record number' }] },
        system: OWN_IDENTIFIERS.mrn(p.clinicId),
        value: p.mrn,
      },
      ...p.identifiers.map((i) => ({ system: i.system, value: i.value })),
    ],
    name: [{ family: p.familyName, given: [p.givenName] }],
    gender: p.sex,
    birthDate: p.birthDate,
    managingOrganization: { identifier: { system: OWN_IDENTIFIERS.clinic, value: p.clinicId } },
  };
}

function bodySite(site: NonNullable<ProcedureDto['site']>) {
  const info = BODY_SITES[site.bodySite];
  const coding = info.snomed
    ? [{ system: SNOMED, code: info.snomed, display: info.display }]
    : [{ system: OWN_CODES.bodySite, code: site.bodySite, display: info.display }];
  const laterality = site.laterality ? LATERALITIES[site.laterality] : undefined;
  return {
    ...(laterality
      ? { extension: [{ url: EXTENSIONS.laterality, valueCodeableConcept: { coding: [{ system: SNOMED, code: laterality.snomed, display: laterality.display }] } }] }
      : {}),
    coding,
    text: laterality ? `${info.display}, ${site.laterality}` : info.display,
  };
}

export function toFhirProcedure(p: ProcedureDto): FhirResource {
  const route = ROUTES[p.route];
  const extension: Record<string, unknown>[] = [
    { url: EXTENSIONS.productLot, valueReference: ref('BiologicallyDerivedProduct', p.lotId) },
    { url: EXTENSIONS.route, valueCodeableConcept: { coding: [{ system: SNOMED, code: route.snomed, display: route.display }] } },
    { url: EXTENSIONS.imagingGuidance, valueCodeableConcept: { coding: [{ system: OWN_CODES.imagingGuidance, code: p.imagingGuidance }] } },
    // FHIR integer is 32-bit: the particle count (up to ~1.5e10) is a Quantity.
    { url: EXTENSIONS.doseParticles, valueQuantity: { value: p.dose.particles, unit: 'particles', system: UCUM, code: '{particles}' } },
    { url: EXTENSIONS.doseVolume, valueQuantity: { value: p.dose.volumeMl, unit: 'mL', system: UCUM, code: 'mL' } },
    { url: EXTENSIONS.vialsUsed, valueInteger: p.vialsUsed },
  ];
  if (p.doseDeviationReason) extension.push({ url: EXTENSIONS.doseDeviationReason, valueString: p.doseDeviationReason });
  return {
    resourceType: 'Procedure',
    id: p.id,
    // Last changed when it was marked entered-in-error (its only change), else when it was recorded.
    meta: meta(p.version, p.enteredInError?.at ?? p.createdAt),
    extension,
    status: p.status,
    code: {
      coding: [{ system: OWN_CODES.procedure, code: 'extracellular-vesicle-administration', display: 'Administration of an extracellular vesicle (exosome) product' }],
      text: 'Exosome product administration',
    },
    subject: ref('Patient', p.patientId),
    performedDateTime: p.performedAt,
    performer: [{ actor: { display: p.performer } }],
    reasonCode: [{ coding: [{ system: ICD10CM, code: p.indication.code, ...(p.indication.display ? { display: p.indication.display } : {}) }] }],
    ...(p.site ? { bodySite: [bodySite(p.site)] } : {}),
    ...(p.notes ? { note: [{ text: p.notes }] } : {}),
  };
}

export function toFhirObservation(o: OutcomeScore): FhirResource {
  const info = INSTRUMENTS[o.instrument];
  const coding = [
    ...(info.loinc ? [{ system: LOINC, code: info.loinc, display: info.display }] : []),
    { system: OWN_CODES.instrument, code: o.instrument, display: info.display },
  ];
  return {
    resourceType: 'Observation',
    id: o.id,
    // Scores are never changed: one version, last updated when recorded.
    meta: meta(1, o.recordedAt),
    extension: [{ url: EXTENSIONS.timepoint, valueCoding: { system: OWN_CODES.timepoint, code: o.timepoint } }],
    status: 'final',
    category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'survey', display: 'Survey' }] }],
    code: { coding, text: info.display },
    subject: ref('Patient', o.patientId),
    partOf: [ref('Procedure', o.procedureId)],
    effectiveDateTime: o.assessedAt,
    issued: o.recordedAt,
    valueQuantity: { value: o.score, unit: info.unit, system: UCUM, code: info.unit },
  };
}

const CAUSALITY: Record<string, string | null> = {
  certain: 'Certain',
  probable: 'Probably-Likely',
  possible: 'Possible',
  unlikely: 'Unlikely',
  conditional: 'Conditional-Classified',
  unassessable: 'Unassessable-Unclassifiable',
  'not-related': null,
};
const AE_OUTCOME_CODES: Record<string, string> = {
  resolved: 'resolved',
  recovering: 'recovering',
  ongoing: 'ongoing',
  'resolved-with-sequelae': 'resolvedWithSequelae',
  fatal: 'fatal',
  unknown: 'unknown',
};

export function toFhirAdverseEvent(a: AdverseEventDto): FhirResource {
  const severity = a.severityGrade === 1 ? 'mild' : a.severityGrade === 2 ? 'moderate' : 'severe';
  const causality = CAUSALITY[a.relatedness];
  return {
    resourceType: 'AdverseEvent',
    id: a.id,
    meta: meta(a.version, a.updatedAt),
    extension: [
      { url: EXTENSIONS.ctcaeGrade, valueInteger: a.severityGrade },
      ...a.seriousnessCriteria.map((c) => ({ url: EXTENSIONS.seriousnessCriterion, valueCoding: { system: OWN_CODES.seriousnessCriterion, code: c } })),
    ],
    actuality: 'actual',
    // The CTCAE term, when the reporter gave one, coded; the description is the text either way.
    event: a.term ? { coding: [{ system: OWN_CODES.ctcaeTerm, version: '5.0', code: a.term, display: a.term }], text: a.description } : { text: a.description },
    subject: ref('Patient', a.patientId),
    date: a.onsetAt,
    recordedDate: a.createdAt,
    seriousness: { coding: [{ system: AE_SERIOUSNESS, code: a.serious ? 'Serious' : 'Non-serious' }] },
    severity: { coding: [{ system: AE_SEVERITY, code: severity }], text: `CTCAE grade ${a.severityGrade} (${GRADE_NAMES[a.severityGrade as 1 | 2 | 3 | 4 | 5]})` },
    outcome: { coding: [{ system: AE_OUTCOME, code: AE_OUTCOME_CODES[a.outcome] }] },
    suspectEntity: [
      {
        instance: ref('Procedure', a.procedureId),
        causality: [
          {
            assessment: causality
              ? { coding: [{ system: AE_CAUSALITY, code: causality }], text: a.relatedness }
              : { coding: [{ system: OWN_CODES.relatedness, code: a.relatedness }], text: a.relatedness },
          },
        ],
      },
    ],
  };
}

export function toFhirProduct(l: LotSummary, dins: string[]): FhirResource {
  return {
    resourceType: 'BiologicallyDerivedProduct',
    id: l.id,
    meta: meta(l.version, l.updatedAt),
    extension: [
      { url: EXTENSIONS.lotStatus, valueCoding: { system: OWN_CODES.lotStatus, code: l.status } },
      { url: EXTENSIONS.expiresOn, valueDate: l.expiresOn },
    ],
    identifier: [{ system: OWN_IDENTIFIERS.lotNumber(l.manufacturer), value: l.lotNumber }, ...dins.map((din) => ({ system: OWN_IDENTIFIERS.din, value: din }))],
    productCategory: 'biologicalAgent',
    productCode: { text: l.productName },
    status: l.status === 'released' ? 'available' : 'unavailable',
    // R4 quantity is a 32-bit integer: the vial count, never a particle count.
    quantity: l.vialCount,
    processing: [
      {
        description: 'Extracellular vesicle isolation',
        procedure: { coding: [{ system: OWN_CODES.isolationMethod, code: l.isolationMethod }] },
        timeDateTime: l.manufacturedOn,
      },
    ],
    storage: [{ description: 'Frozen storage', temperature: l.storageTempC, scale: 'celsius', duration: { end: `${l.expiresOn}T23:59:59Z` } }],
  };
}

/**
 * A lot's recipients as an R4 Group (the cohort of a recall, and what `Group/{lotId}/$export` exports): an
 * actual group of persons, one member per patient with a procedure of the lot that stands (not entered in
 * error), and the lot as its defining characteristic. Its id is the lot's id.
 */
export function toFhirGroup(lot: { id: string; lotNumber: string; manufacturer: string; productName: string }, patientIds: string[]): FhirResource {
  return {
    resourceType: 'Group',
    id: lot.id,
    identifier: [{ system: OWN_IDENTIFIERS.lotNumber(lot.manufacturer), value: lot.lotNumber }],
    active: true,
    type: 'person',
    actual: true,
    code: { text: 'Recipients of a product lot' },
    name: `Recipients of lot ${lot.lotNumber} (${lot.productName})`,
    quantity: patientIds.length,
    characteristic: [
      {
        code: { text: 'Received product lot' },
        valueReference: { ...ref('BiologicallyDerivedProduct', lot.id), display: lot.lotNumber },
        exclude: false,
      },
    ],
    ...(patientIds.length ? { member: patientIds.map((id) => ({ entity: ref('Patient', id) })) } : {}),
  };
}
