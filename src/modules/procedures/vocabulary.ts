/** Routes, sites and guidance (domain.md, Procedures). SNOMED CT codes are what the FHIR facade emits. */
export interface RouteInfo {
  snomed: string;
  display: string;
  siteRequired: boolean;
  /** Imaging guidance other than `none` is allowed. */
  guidanceAllowed: boolean;
}

export const ROUTES = {
  intravenous: { snomed: '47625008', display: 'Intravenous route', siteRequired: false, guidanceAllowed: false },
  intranasal: { snomed: '46713006', display: 'Nasal route', siteRequired: false, guidanceAllowed: false },
  topical: { snomed: '6064005', display: 'Topical route', siteRequired: true, guidanceAllowed: false },
  'intra-articular': { snomed: '12130007', display: 'Intra-articular route', siteRequired: true, guidanceAllowed: true },
  intratendinous: { snomed: '418586008', display: 'Intratendinous route', siteRequired: true, guidanceAllowed: true },
  peritendinous: { snomed: '419762003', display: 'Peritendinous route', siteRequired: true, guidanceAllowed: true },
  periarticular: { snomed: '372474001', display: 'Periarticular route', siteRequired: true, guidanceAllowed: true },
  intrabursal: { snomed: '372459003', display: 'Intrabursal route', siteRequired: true, guidanceAllowed: true },
  intradiscal: { snomed: '372465003', display: 'Intradiscal route', siteRequired: true, guidanceAllowed: true },
  epidural: { snomed: '404820008', display: 'Epidural route', siteRequired: true, guidanceAllowed: true },
  perineural: { snomed: '372475000', display: 'Perineural route', siteRequired: true, guidanceAllowed: true },
  intramuscular: { snomed: '78421000', display: 'Intramuscular route', siteRequired: true, guidanceAllowed: true },
  subcutaneous: { snomed: '34206005', display: 'Subcutaneous route', siteRequired: true, guidanceAllowed: true },
  intradermal: { snomed: '372464004', display: 'Intradermal route', siteRequired: true, guidanceAllowed: true },
  intralesional: { snomed: '372466002', display: 'Intralesional route', siteRequired: true, guidanceAllowed: true },
} as const satisfies Record<string, RouteInfo>;
export type Route = keyof typeof ROUTES;
export const ROUTE_CODES = Object.keys(ROUTES) as [Route, ...Route[]];

/** `laterality`: required for joints and tendons, absent for spine, scalp and face, optional otherwise. */
type SiteKind = 'joint' | 'tendon' | 'spine' | 'surface' | 'other';
export interface SiteInfo {
  /** null: no verified SNOMED CT code; the FHIR facade uses the service's own code system. */
  snomed: string | null;
  display: string;
  kind: SiteKind;
}

export const BODY_SITES = {
  'knee-joint': { snomed: '49076000', display: 'Knee joint structure', kind: 'joint' },
  'patellofemoral-joint': { snomed: '129160003', display: 'Patellofemoral joint structure', kind: 'joint' },
  'hip-joint': { snomed: '24136001', display: 'Hip joint structure', kind: 'joint' },
  'ankle-joint': { snomed: '70258002', display: 'Ankle joint structure', kind: 'joint' },
  'shoulder-joint': { snomed: '31398001', display: 'Shoulder joint structure', kind: 'joint' },
  'glenohumeral-joint': { snomed: '85537004', display: 'Glenohumeral joint structure', kind: 'joint' },
  'elbow-joint': { snomed: '16953009', display: 'Elbow joint structure', kind: 'joint' },
  'wrist-joint': { snomed: '74670003', display: 'Wrist joint structure', kind: 'joint' },
  'supraspinatus-tendon': { snomed: '5580002', display: 'Supraspinatus tendon structure', kind: 'tendon' },
  'infraspinatus-tendon': { snomed: '59713001', display: 'Infraspinatus tendon structure', kind: 'tendon' },
  'subscapularis-tendon': { snomed: '80108009', display: 'Subscapularis tendon structure', kind: 'tendon' },
  'achilles-tendon': { snomed: null, display: 'Achilles tendon', kind: 'tendon' },
  'lateral-epicondyle': { snomed: null, display: 'Lateral epicondyle of humerus', kind: 'other' },
  'cervical-spine': { snomed: '786964009', display: 'Cervical spine', kind: 'spine' },
  'thoracic-spine': { snomed: '786965005', display: 'Thoracic spine', kind: 'spine' },
  'lumbar-spine': { snomed: '786966006', display: 'Lumbar spine', kind: 'spine' },
  scalp: { snomed: null, display: 'Scalp', kind: 'surface' },
  face: { snomed: null, display: 'Face', kind: 'surface' },
} as const satisfies Record<string, SiteInfo>;
export type BodySite = keyof typeof BODY_SITES;
export const BODY_SITE_CODES = Object.keys(BODY_SITES) as [BodySite, ...BodySite[]];

export const LATERALITIES = {
  left: { snomed: '7771000', display: 'Left' },
  right: { snomed: '24028007', display: 'Right' },
  bilateral: { snomed: '51440002', display: 'Right and left' },
} as const;
export type Laterality = keyof typeof LATERALITIES;
export const LATERALITY_CODES = Object.keys(LATERALITIES) as [Laterality, ...Laterality[]];

export const IMAGING_GUIDANCE = ['none', 'ultrasound', 'fluoroscopy', 'ct', 'mri'] as const;
export type ImagingGuidance = (typeof IMAGING_GUIDANCE)[number];

export const ICD10CM_SYSTEM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const DOSE_TOLERANCE = 0.1;
