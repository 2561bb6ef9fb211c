import { describe, expect, it } from 'vitest';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { loggableError } from './logger.js';

describe('loggable errors', () => {
  it('withhold query parameters and PostgreSQL details, keeping the SQL, codes and frames', () => {
    const pgError = Object.assign(new Error('duplicate key value violates unique constraint "patients_clinic_mrn_uq"'), {
      code: '23505',
      constraint: 'patients_clinic_mrn_uq',
      detail: 'Key (clinic_id, mrn)=(clinic-a, MRN-SECRET-77) already exists.',
    });
    const err = new DrizzleQueryError('insert into "patients" ("mrn", "given_name") values ($1, $2)', ['MRN-SECRET-77', 'Zebulon'], pgError);
    const logged = JSON.stringify(loggableError(err));
    expect(logged).not.toContain('MRN-SECRET-77');
    expect(logged).not.toContain('Zebulon');
    expect(logged).toContain('insert into \\"patients\\"');
    expect(logged).toContain('params: [withheld]');
    expect(logged).toContain('23505');
    expect(logged).toContain('patients_clinic_mrn_uq');
    expect(logged).toMatch(/at .*logger\.test\.ts/);
  });
});
