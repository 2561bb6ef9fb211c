import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { IdempotencyHeaders, IfMatchHeaders, OptionalIfMatchHeaders } from '../../http/headers.js';
import {
  Consent,
  ConsentCreate,
  ConsentPage,
  ConsentParams,
  ConsentWithdraw,
  HistoryQuery,
  ListQuery,
  Patient,
  PatientCreate,
  PatientHistory,
  PatientPage,
  PatientParams,
  PatientPatch,
  PatientSearch,
} from './patients.schemas.js';
import type { PatientsService } from './patients.service.js';
import type { ConsentsService } from './consents.service.js';

const tags = ['patients'];

export function patientsRoutes(app: FastifyInstance, { patients, consents }: { patients: PatientsService; consents: ConsentsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/patients', {
    config: { scope: 'patients:write' },
    schema: {
      operationId: 'createPatient',
      tags,
      summary: 'Register a patient in the caller\'s clinic',
      headers: IdempotencyHeaders,
      body: PatientCreate,
      response: { 201: Patient, ...problemResponses(409, 422) },
    },
  }, async (req, reply) => {
    const dto = await patients.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/patients/${dto.id}`).send(dto);
  });

  r.get('/patients', {
    config: { scope: 'patients:read' },
    schema: {
      operationId: 'searchPatients',
      tags,
      summary: 'List or search the caller\'s clinic\'s patients',
      querystring: PatientSearch,
      response: { 200: PatientPage },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await patients.search(actorOf(req), filters, pageRequest({ limit, cursor })));
  });

  r.get('/patients/:id', {
    config: { scope: 'patients:read' },
    schema: { operationId: 'getPatient', tags, summary: 'Read a patient', params: PatientParams, response: { 200: Patient, ...problemResponses(404) } },
  }, async (req, reply) => {
    const dto = await patients.get(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.patch('/patients/:id', {
    config: { scope: 'patients:write' },
    schema: {
      operationId: 'updatePatient',
      tags,
      summary: 'Correct a patient\'s demographics (a new version; the old stays in history)',
      headers: IfMatchHeaders,
      params: PatientParams,
      body: PatientPatch,
      response: { 200: Patient, ...problemResponses(404, 409, 412, 422, 428) },
    },
  }, async (req, reply) => {
    const dto = await patients.update(actorOf(req), req.params.id, ifMatchVersion(req), req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.get('/patients/:id/history', {
    config: { scope: 'patients:read' },
    schema: {
      operationId: 'getPatientHistory',
      tags,
      summary: 'Every version of a patient record, oldest first',
      params: PatientParams,
      querystring: HistoryQuery,
      response: { 200: PatientHistory, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await patients.history(actorOf(req), req.params.id, versionPageRequest(req.query))));

  r.post('/patients/:id/consents', {
    config: { scope: 'patients:write' },
    schema: {
      operationId: 'createConsent',
      tags,
      summary: 'Record a signed investigational-treatment consent',
      headers: IdempotencyHeaders,
      params: PatientParams,
      body: ConsentCreate,
      response: { 201: Consent, ...problemResponses(404, 422) },
    },
  }, async (req, reply) => {
    const dto = await consents.create(actorOf(req), req.params.id, req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/patients/${req.params.id}/consents/${dto.id}`).send(dto);
  });

  r.get('/patients/:id/consents', {
    config: { scope: 'patients:read' },
    schema: {
      operationId: 'listConsents',
      tags,
      summary: 'A patient\'s consents, active and withdrawn',
      params: PatientParams,
      querystring: ListQuery,
      response: { 200: ConsentPage, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await consents.list(actorOf(req), req.params.id, pageRequest(req.query))));

  r.post('/patients/:id/consents/:consentId/withdraw', {
    config: { scope: 'patients:write' },
    schema: {
      operationId: 'withdrawConsent',
      tags,
      summary: 'Withdraw a consent (kept, marked withdrawn with who, when and why)',
      headers: OptionalIfMatchHeaders,
      params: ConsentParams,
      body: ConsentWithdraw,
      response: { 200: Consent, ...problemResponses(404, 409, 412, 422) },
    },
  }, async (req, reply) => {
    const expected = req.headers['if-match'] === undefined ? undefined : ifMatchVersion(req);
    const dto = await consents.withdraw(actorOf(req), req.params.id, req.params.consentId, req.body, expected);
    setEtag(reply, dto.version);
    return dto;
  });

}
