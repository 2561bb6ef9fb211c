/**
 * Code systems and extension URLs of the FHIR facade. Standard systems only where the code is verified
 * (domain.md, and the R4 definitions for HL7 terminology); every other concept goes out under the service's
 * own URIs below, which are stable: clients may rely on them.
 */
export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const AE_SEVERITY = 'http://terminology.hl7.org/CodeSystem/adverse-event-severity';
export const AE_SERIOUSNESS = 'http://terminology.hl7.org/CodeSystem/adverse-event-seriousness';
export const AE_OUTCOME = 'http://terminology.hl7.org/CodeSystem/adverse-event-outcome';
export const AE_CAUSALITY = 'http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess';

const OWN = 'urn:exosome-records:fhir';
export const OWN_CODES = {
  procedure: `${OWN}:CodeSystem:procedure`,
  bodySite: `${OWN}:CodeSystem:body-site`,
  imagingGuidance: `${OWN}:CodeSystem:imaging-guidance`,
  instrument: `${OWN}:CodeSystem:outcome-instrument`,
  timepoint: `${OWN}:CodeSystem:outcome-timepoint`,
  relatedness: `${OWN}:CodeSystem:ae-relatedness`,
  seriousnessCriterion: `${OWN}:CodeSystem:ae-seriousness-criterion`,
  lotStatus: `${OWN}:CodeSystem:lot-status`,
  isolationMethod: `${OWN}:CodeSystem:isolation-method`,
  /**
   * CTCAE v5 term names as codes (domain.md's list): CTCAE itself codes terms in MedDRA, which the service does not
   * hold, and no standard FHIR system for term names is verified, so they go out under the service's own URI.
   */
  ctcaeTerm: `${OWN}:CodeSystem:ctcae-v5-term`,
} as const;

export const OWN_IDENTIFIERS = {
  lotNumber: (manufacturer: string) => `${OWN}:identifier:lot-number:${encodeURIComponent(manufacturer)}`,
  din: `${OWN}:identifier:isbt128-din`,
  mrn: (clinicId: string) => `${OWN}:identifier:mrn:${encodeURIComponent(clinicId)}`,
  clinic: `${OWN}:identifier:clinic`,
} as const;

export const EXTENSIONS = {
  productLot: `${OWN}:StructureDefinition:procedure-product-lot`,
  route: `${OWN}:StructureDefinition:procedure-route`,
  imagingGuidance: `${OWN}:StructureDefinition:procedure-imaging-guidance`,
  doseParticles: `${OWN}:StructureDefinition:procedure-dose-particles`,
  doseVolume: `${OWN}:StructureDefinition:procedure-dose-volume`,
  vialsUsed: `${OWN}:StructureDefinition:procedure-vials-used`,
  doseDeviationReason: `${OWN}:StructureDefinition:procedure-dose-deviation-reason`,
  laterality: `${OWN}:StructureDefinition:body-site-laterality`,
  timepoint: `${OWN}:StructureDefinition:observation-timepoint`,
  ctcaeGrade: `${OWN}:StructureDefinition:adverse-event-ctcae-grade`,
  seriousnessCriterion: `${OWN}:StructureDefinition:adverse-event-seriousness-criterion`,
  lotStatus: `${OWN}:StructureDefinition:product-lot-status`,
  expiresOn: `${OWN}:StructureDefinition:product-expires-on`,
} as const;
