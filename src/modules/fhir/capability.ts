import type { FastifyRequest } from 'fastify';
import { FHIR_JSON } from '../../http/problem.js';
import { API_VERSION } from '../../http/openapi.js';
import type { FhirResource } from './fhir.mappers.js';
import { fhirBase } from './fhir.http.js';
import { publicBase } from '../../http/public-url.js';

/** When the statement below last changed in meaning (CapabilityStatement.date). */
export const CAPABILITY_DATE = '2026-11-29';

export interface SearchParamSpec {
  name: string;
  type: 'token' | 'string' | 'date' | 'reference' | 'number';
  documentation: string;
  definition?: string;
}

interface ResourceEntry {
  type: string;
  interactions: Set<string>;
  searchParams: SearchParamSpec[];
  searchInclude: string[];
  searchRevInclude: string[];
  operations: { name: string; definition: string }[];
  documentation?: string;
  /** Read without versions (no meta.versionId, no ETag): a resource derived from others, such as Group. */
  unversioned?: boolean;
}

/**
 * What the facade serves, recorded by the routes as they are registered, so the CapabilityStatement
 * (R4 §2.37) lists exactly what is served and nothing else.
 */
export class CapabilityRegistry {
  private readonly entries = new Map<string, ResourceEntry>();
  /** Operations on the whole server (`[base]/$export`), listed under rest.operation. */
  readonly systemOperations: { name: string; definition: string }[] = [];
  /** CapabilityStatements this server also conforms to (FHIR Bulk Data's, when export is served). */
  readonly instantiates: string[] = [];

  resource(type: string): ResourceEntry {
    let e = this.entries.get(type);
    if (!e) {
      e = { type, interactions: new Set(), searchParams: [], searchInclude: [], searchRevInclude: [], operations: [] };
      this.entries.set(type, e);
    }
    return e;
  }

  /** The CapabilityStatement, its implementation URL taken from the request. */
  statement(req: FastifyRequest): FhirResource {
    return {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: CAPABILITY_DATE,
      publisher: 'Exosome therapy records',
      kind: 'instance',
      software: { name: 'exosome-records', version: API_VERSION },
      implementation: { description: 'Read-only FHIR R4 facade over the exosome therapy records API', url: fhirBase(req) },
      ...(this.instantiates.length ? { instantiates: this.instantiates } : {}),
      fhirVersion: '4.0.1',
      format: [FHIR_JSON, 'json'],
      rest: [
        {
          mode: 'server',
          documentation:
            'Read-only. Authorization: Bearer JWT (RS256, ES256, EdDSA, ES384 or RS384) with scope and clinic_id claims; a clinic sees only its own patients. ' +
            'Search (R4 §3.1.1): a comma separates values that are ORed, a repeated parameter ANDs; escape | , $ \\ in values with a backslash. ' +
            'Result parameters: _count 0..200 (0: total only), _summary=count, _total=accurate|none (estimate answers accurate), _sort on the parameters listed per resource, ' +
            '_format (json forms only; others 406). A parameter this server does not support is ignored and left out of the Bundle\'s self link; ' +
            'with Prefer: handling=strict it is a 400 OperationOutcome. An unsupported modifier on a supported parameter is always a 400.',
          security: {
            service: [
              {
                coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }],
                text: 'OAuth2 using SMART-on-FHIR profile (SMART Backend Services)',
              },
            ],
            extension: [
              {
                url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                extension: [{ url: 'token', valueUri: `${publicBase(req)}/auth/token` }],
              },
            ],
            description:
              'Bearer JWT; scopes patients:read, clinical:read, lots:read, reports:read. Backend clients get tokens from /auth/token ' +
              '(SMART Backend Services: client_credentials with an RS384 or ES384 signed assertion; scopes system/Patient.rs, system/Procedure.rs, ' +
              'system/Observation.rs, system/AdverseEvent.rs, system/BiologicallyDerivedProduct.rs, system/Group.rs, system/*.rs); see .well-known/smart-configuration.',
          },
          resource: [...this.entries.values()].map((e) => ({
            type: e.type,
            ...(e.documentation ? { documentation: e.documentation } : {}),
            interaction: [...e.interactions].map((code) => ({ code })),
            // Reads answer ETag W/"<versionId>" and honour If-None-Match (sendRead); If-Modified-Since is not read.
            ...(e.interactions.has('read') && !e.unversioned ? { versioning: 'versioned', readHistory: e.interactions.has('vread'), conditionalRead: 'not-match' } : {}),
            ...(e.searchInclude.length ? { searchInclude: e.searchInclude } : {}),
            ...(e.searchRevInclude.length ? { searchRevInclude: e.searchRevInclude } : {}),
            ...(e.searchParams.length ? { searchParam: e.searchParams } : {}),
            ...(e.operations.length ? { operation: e.operations } : {}),
          })),
          ...(this.systemOperations.length ? { operation: this.systemOperations } : {}),
        },
      ],
    };
  }
}
