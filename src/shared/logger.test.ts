import { describe, expect, it } from 'vitest';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { loggableError } from './logger.js';

const pgError = (message: string, fields: Record<string, string>) => Object.assign(new Error(message), fields);

describe('loggable errors', () => {
  it('withhold query parameters, PostgreSQL messages and details, keeping the SQL, codes and frames', () => {
    const cause = pgError('duplicate key value violates unique constraint "patients_clinic_mrn_uq"', {
      code: '23505',
      constraint: 'patients_clinic_mrn_uq',
      detail: 'Key (clinic_id, mrn)=(clinic-a, MRN-SECRET-77) already exists.',
    });
    const err = new DrizzleQueryError('insert into "patients" ("mrn", "given_name") values ($1, $2)', ['MRN-SECRET-77', 'Zebulon'], cause);
    const logged = JSON.stringify(loggableError(err));
    expect(logged).not.toContain('MRN-SECRET-77');
    expect(logged).not.toContain('Zebulon');
    expect(logged).not.toContain('params');
    expect(logged).toContain('insert into \\"patients\\"');
    expect(logged).toContain('23505');
    expect(logged).toContain('patients_clinic_mrn_uq');
    expect(logged).toMatch(/at .*logger\.test\.ts/);
  });

  it.each([
    ['invalid input syntax for type date: "2023-02-30"', '22007', '2023-02-30'],
    ['date/time field value out of range: "0000-01-01"', '22008', '0000-01-01'],
    ['invalid byte sequence for encoding "UTF8": 0x00', '22021', '0x00'],
    ['value too long for type character varying(64): Lopez-Garcia', '22001', 'Lopez-Garcia'],
  ])('never carry the value PostgreSQL quotes: %s', (message, code, value) => {
    const err = new DrizzleQueryError('select 1 where $1::date is not null', [value], pgError(message, { code, routine: 'DateTimeParseError' }));
    const logged = JSON.stringify(loggableError(err));
    expect(logged).not.toContain(value);
    expect(logged).toContain(code);
  });

  it('withhold the message of any error, with its stack header, unless it is marked safe or a fixed driver text', () => {
    const parse = (() => {
      try {
        JSON.parse('{"givenName":"Zebulon');
      } catch (e) {
        return e;
      }
    })();
    expect(JSON.stringify(loggableError(parse))).not.toContain('Zebulon');
    expect(JSON.stringify(loggableError(new TypeError('Cannot read "Zebulon"')))).not.toContain('Zebulon');
    expect(loggableError(Object.assign(new Error('PostgreSQL did not start'), { safeToLog: true }))?.message).toBe('PostgreSQL did not start');
    expect(loggableError(new Error('Connection terminated unexpectedly'))?.message).toBe('Connection terminated unexpectedly');
  });
});
