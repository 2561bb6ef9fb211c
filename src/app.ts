import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { randomUUID } from 'node:crypto';
import { createDb, type Db } from './db/client.js';
import { createUnitOfWork } from './db/unit-of-work.js';
import type { TokenVerifier } from './auth/verifier.js';
import { systemClock, type Clock } from './shared/clock.js';
import { AppError } from './shared/errors.js';
import { errorsPlugin } from './http/errors.js';
import { inputPlugin, parseQueryString } from './http/input.js';
import { authPlugin } from './http/auth.js';
import { openapiPlugin } from './http/openapi.js';
import { healthRoutes } from './http/health.js';
import { lingeringClosePlugin } from './http/lingering-close.js';
import { headPlugin } from './http/head.js';
import { negotiationPlugin } from './http/negotiation.js';
import { createAuditLog } from './modules/audit/audit.service.js';
import { createEventFeed, createEventLog } from './modules/events/events.service.js';
import { eventsRoutes } from './modules/events/events.routes.js';
import { createWebhooksService } from './modules/webhooks/webhooks.service.js';
import { webhooksRoutes } from './modules/webhooks/webhooks.routes.js';
import { createDispatcher, type DispatchOptions } from './modules/webhooks/dispatcher.js';
import { createAuditLogService } from './modules/audit/audit-log.service.js';
import { auditRoutes } from './modules/audit/audit.routes.js';
import { createTraceabilityService } from './modules/traceability/traceability.service.js';
import { traceabilityRoutes } from './modules/traceability/traceability.routes.js';
import { createDossierService } from './modules/dossier/dossier.service.js';
import { createSafetyService } from './modules/safety/safety.service.js';
import { createSafetyMonitor, type SafetyMonitorOptions } from './modules/safety/safety.monitor.js';
import { safetyRoutes } from './modules/safety/safety.routes.js';
import { createFhirService } from './modules/fhir/fhir.service.js';
import { createFhirSearch } from './modules/fhir/fhir.search.js';
import { createFhirVersions } from './modules/fhir/fhir.versions.service.js';
import { fhirRoutes } from './modules/fhir/fhir.routes.js';
import { FHIR_FORMAT, FHIR_MEDIA_TYPES } from './modules/fhir/fhir.http.js';
import { toOperationOutcome } from './modules/fhir/operation-outcome.js';
import { clientErrorHandler, frameworkErrorHandler, sendProblemOf } from './http/framework-errors.js';
import { FHIR_JSON, operationOutcomeResponses } from './http/problem.js';
import { createHistory } from './modules/history/history.service.js';
import { createPatientsService } from './modules/patients/patients.service.js';
import { createConsentsService } from './modules/patients/consents.service.js';
import { patientsRoutes } from './modules/patients/patients.routes.js';
import { createDonorsService } from './modules/donors/donors.service.js';
import { donorsRoutes } from './modules/donors/donors.routes.js';
import { createLotsService } from './modules/lots/lots.service.js';
import { createVialsService } from './modules/vials/vials.service.js';
import { vialsRoutes } from './modules/vials/vials.routes.js';
import { createRecallNoticesService } from './modules/recall-notices/recall-notices.service.js';
import { recallNoticesRoutes } from './modules/recall-notices/recall-notices.routes.js';
import { lotsRoutes } from './modules/lots/lots.routes.js';
import { createProceduresService } from './modules/procedures/procedures.service.js';
import { proceduresRoutes } from './modules/procedures/procedures.routes.js';
import { createOutcomesService } from './modules/outcomes/outcomes.service.js';
import { outcomesRoutes } from './modules/outcomes/outcomes.routes.js';
import { createAdverseEventsService } from './modules/adverse-events/adverse-events.service.js';
import { adverseEventsRoutes } from './modules/adverse-events/adverse-events.routes.js';
import { createProductsService } from './modules/products/products.service.js';
import { productsRoutes } from './modules/products/products.routes.js';
import { CapabilityRegistry } from './modules/fhir/capability.js';
import { createBulkService } from './modules/bulk/bulk.service.js';
import { createBulkWorker, type BulkOptions } from './modules/bulk/bulk.worker.js';
import { bulkRoutes } from './modules/bulk/bulk.routes.js';
import type { TokenIssuer } from './auth/signing-key.js';
import { Unauthorized } from './shared/errors.js';
import { createClientsService } from './modules/clients/clients.service.js';
import { clientsRoutes, smartRoutes } from './modules/clients/clients.routes.js';
import './http/public-url.js';

export interface AppOptions {
  pool: pg.Pool;
  verifyToken: TokenVerifier;
  logger: FastifyBaseLogger;
  clock?: Clock;
  /** Requests per minute per token subject; 0 turns the limit off. */
  rateLimitPerMinute?: number;
  requestTimeoutMs?: number;
  /** How often this instance seals new audit entries into the hash chain; 0 leaves it to verify. */
  auditSealIntervalMs?: number;
  /** Lot release limit for endotoxin (EU/mL). */
  endotoxinLimitEuPerMl?: number;
  /**
   * Webhooks: the URL rule (`allowPrivateUrls`) and how this instance delivers; `pollIntervalMs: 0` (the
   * default) leaves delivery to other instances. Default: https to public addresses only, no delivery.
   */
  webhooks?: DispatchOptions;
  /**
   * SMART Backend Services: signs the access tokens of POST /auth/token (the verifier must accept them:
   * auth/from-env.ts). Absent: the token endpoint answers 503 temporarily_unavailable; everything else works.
   */
  tokenIssuer?: TokenIssuer;
  /** PUBLIC_BASE_URL: the origin clients use (token URL, discovery); absent, URLs come from the request. */
  publicBaseUrl?: string;
  /**
   * FHIR Bulk Data export jobs: how many run at once across instances and how this instance runs them;
   * `pollIntervalMs: 0` (the default) leaves running them to other instances (tests drive the worker).
   */
  bulk?: BulkOptions;
  /**
   * The safety monitor (modules/safety): how often this instance counts the event feed into the lot safety counts
   * and judges signals; `pollIntervalMs: 0` (the default) leaves it to other instances and to reports, which catch up.
   */
  safety?: SafetyMonitorOptions;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's webhook dispatcher (tests drive `tick()` and `idle()` themselves). */
    webhookDispatcher: import('./modules/webhooks/dispatcher.js').Dispatcher;
    /** This instance's bulk export worker (tests drive `tick()` and `idle()` themselves). */
    bulkWorker: import('./modules/bulk/bulk.worker.js').BulkWorker;
    /** This instance's safety monitor (tests drive `catchUp()` themselves). */
    safetyMonitor: import('./modules/safety/safety.monitor.js').SafetyMonitor;
  }
}

export const BODY_LIMIT_BYTES = 1024 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the HTTP application on a pool it does not own: it opens no connection itself. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    // Fastify's own request lines would log the URL with its query (patient names, MRNs): we log our own.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    // Honour a caller's correlation id when it is harmless; otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // maxParamLength: a path parameter may be free text (a product name: 200 characters, each up to 4 UTF-8 bytes
    // percent-encoded as 12), so its schema, not the router, judges its length (400 rather than 414).
    routerOptions: { ignoreTrailingSlash: true, querystringParser: parseQueryString, maxParamLength: 2400 },
    // Errors before routing (a path that is not UTF-8, a request Node cannot parse) leave as problem+json too.
    frameworkErrors: frameworkErrorHandler((req, reply, problem) =>
      req.url.startsWith('/fhir/') ? reply.code(problem.status).type(FHIR_JSON).send(toOperationOutcome(problem)) : sendProblemOf(req, reply, problem),
    ),
    clientErrorHandler: clientErrorHandler((problem, path) =>
      path.startsWith('/fhir/') ? { contentType: FHIR_JSON, body: toOperationOutcome(problem) } : { contentType: 'application/problem+json', body: problem },
    ),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Only JSON bodies (merge-patch is JSON), in UTF-8, their text NFC; text/plain is refused with 415.
  await app.register(inputPlugin);

  // One log line per request: method, route path without its query (which may hold patient data), status, time.
  // Not the token's subject either: it is a value from the request (who acted is in the audit log).
  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  // While closing, every response ends its connection: a keep-alive socket would otherwise hold the close
  // open until the client drops it (in-flight requests finish, then their sockets go).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('X-Request-Id', String(req.id));
    if (closing) reply.header('Connection', 'close');
  });

  const db: Db = createDb(opts.pool);
  const clock = opts.clock ?? systemClock;
  const uow = createUnitOfWork(db);
  const audit = createAuditLog();
  // The transactional outbox: services emit events in the transaction of the change they tell (modules/events).
  const events = createEventLog();
  const history = createHistory();
  const patients = createPatientsService({ db, uow, audit, history, clock });
  const consents = createConsentsService({ db, uow, audit, history, clock, patients });
  // Cross-module reactions, named and wired here once: release asks donors' eligibility; a donor found
  // ineligible quarantines its lots (same transaction); a recall counts the lot's recipients (procedures);
  // a lot's vials are made with it, released with it, and its unused ones marked by its recall (vials).
  const donors = createDonorsService({
    db,
    uow,
    audit,
    events,
    history,
    clock,
    onIneligible: { quarantineLotsOfDonor: (tx, actor, id, at, reason) => lots.quarantineLotsOfDonor(tx, actor, id, at, reason) },
  });
  const lots = createLotsService({
    db,
    uow,
    audit,
    events,
    history,
    clock,
    donors,
    endotoxinLimitEuPerMl: opts.endotoxinLimitEuPerMl ?? 0.5,
    recipients: { countForLot: (exec, lotId) => procedures.recipientsOfLot(exec, lotId) },
    notices: { createForRecall: (tx, lotId, reason, at) => notices.createForRecall(tx, lotId, reason, at) },
    vials: {
      createForLot: (tx, lot, barcodes) => vials.createForLot(tx, lot, barcodes),
      released: (tx, actor, lotId, at) => vials.released(tx, actor, lotId, at),
      recalled: (tx, actor, lotId, at, reason) => vials.recalled(tx, actor, lotId, at, reason),
    },
  });
  const vials = createVialsService({ db, uow, audit, events, clock, lots, notices: { addToNotice: (tx, lotId, clinicId, barcodes) => notices.addToNotice(tx, lotId, clinicId, barcodes) } });
  const notices = createRecallNoticesService({ db, uow, audit, events, clock, lots });
  const procedures = createProceduresService({ db, uow, audit, events, history, clock, patients, lots, vials });
  const outcomes = createOutcomesService({ db, uow, audit, events, clock, patients, procedures });
  const products = createProductsService({ db, uow, audit, history, clock });
  const adverseEvents = createAdverseEventsService({ db, uow, audit, events, history, clock, procedures, products });
  const auditLog = createAuditLogService({ db, audit });
  const feed = createEventFeed({ db });
  const webhookOptions: DispatchOptions = opts.webhooks ?? { allowPrivateUrls: false, pollIntervalMs: 0 };
  const webhooks = createWebhooksService({ db, uow, audit, clock, allowPrivateUrls: webhookOptions.allowPrivateUrls, positionOf: (id, clinicId) => feed.positionOf(id, clinicId) });

  // Every instance may deliver; PostgreSQL hands each delivery to one of them at a time (modules/webhooks/dispatcher.ts).
  const dispatcher = createDispatcher(db, app.log, webhookOptions);
  const clients = createClientsService({ db, uow, audit, clock, tokenIssuer: opts.tokenIssuer, allowPrivateUrls: webhookOptions.allowPrivateUrls });
  app.decorate('publicBaseUrl', opts.publicBaseUrl ? opts.publicBaseUrl.replace(/\/+$/, '') : null);
  // A token the service issued to a client stops working once the client is disabled (within seconds on every instance).
  const verifyToken: TokenVerifier = async (authorization) => {
    const principal = await opts.verifyToken(authorization);
    if (principal.clientId !== undefined && !(await clients.isActive(principal.clientId))) throw new Unauthorized('The client this token was issued to is disabled.');
    return principal;
  };
  if ((webhookOptions.pollIntervalMs ?? 0) > 0) {
    app.addHook('onReady', async () => dispatcher.start());
    app.addHook('onClose', async () => dispatcher.stop());
  }
  app.decorate('webhookDispatcher', dispatcher);
  const reports = createTraceabilityService({ db, pool: opts.pool, audit, clock, lots, donors, vials, patients, log: app.log });
  // Lot safety: counts kept from the event feed by a monitor any instance may run (one at a time), reports on them.
  const safetyMonitor = createSafetyMonitor({ pool: opts.pool, events, log: app.log }, opts.safety);
  if ((opts.safety?.pollIntervalMs ?? 0) > 0) {
    app.addHook('onReady', async () => safetyMonitor.start());
    app.addHook('onClose', async () => safetyMonitor.stop());
  }
  app.decorate('safetyMonitor', safetyMonitor);
  const safety = createSafetyService({ db, audit, clock, lots, monitor: safetyMonitor });
  // The printable lot dossier (PDF, HTML): the lot report, the safety report's rate against the pool, the audit chain head.
  const dossier = createDossierService({ clock, reports, safety, auditLog });
  const fhirSearch = createFhirSearch({ patients, procedures, outcomes, adverseEvents, lots, donors });
  const fhir = createFhirService({ patients, procedures, outcomes, adverseEvents, lots, search: fhirSearch });
  const fhirVersions = createFhirVersions({ patients, procedures, outcomes, adverseEvents, lots, donors });
  // Bulk export jobs run on any instance; PostgreSQL hands each job to one at a time (modules/bulk/bulk.worker.ts).
  const bulk = createBulkService({ db, audit, lots });
  const bulkOptions: BulkOptions = opts.bulk ?? {};
  const bulkWorker = createBulkWorker({ db, pool: opts.pool, log: app.log, products: (ids) => fhirSearch.products(ids) }, bulkOptions);
  if ((bulkOptions.pollIntervalMs ?? 0) > 0) {
    app.addHook('onReady', async () => bulkWorker.start());
    app.addHook('onClose', async () => bulkWorker.stop());
  }
  app.decorate('bulkWorker', bulkWorker);
  const capability = new CapabilityRegistry();

  // Every instance offers to seal; the database lets one at a time do it (docs/adr/0001-audit-hash-chain.md).
  const sealEvery = opts.auditSealIntervalMs ?? 0;
  if (sealEvery > 0) {
    let timer: NodeJS.Timeout | undefined;
    let sealing: Promise<unknown> = Promise.resolve();
    const tick = () => {
      sealing = auditLog
        .seal()
        .catch((err: unknown) => app.log.warn({ err }, 'audit sealing failed; will retry'))
        .finally(() => {
          timer = setTimeout(tick, sealEvery);
          timer.unref();
        });
    };
    app.addHook('onReady', async () => {
      timer = setTimeout(tick, sealEvery);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      clearTimeout(timer);
      await sealing;
      clearTimeout(timer);
    });
  }

  await app.register(errorsPlugin);
  await app.register(lingeringClosePlugin);
  await app.register(headPlugin);
  await app.register(authPlugin, { verify: verifyToken });
  if ((opts.rateLimitPerMinute ?? 0) > 0) {
    await app.register(rateLimit, {
      global: true,
      max: opts.rateLimitPerMinute!,
      timeWindow: 60_000,
      hook: 'preHandler', // after authentication, so the limit is per token subject
      keyGenerator: (req) => `sub:${req.principal?.sub ?? req.ip}`,
      allowList: (req) => req.principal === null,
      errorResponseBuilder: (_req, ctx) =>
        new AppError(429, 'rate-limited', 'Too Many Requests', `More than ${ctx.max} requests in a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s.`),
    });
  }
  await app.register(openapiPlugin);

  healthRoutes(app, { pool: opts.pool });
  await smartRoutes(app, { clients, jwks: () => (opts.tokenIssuer ? [opts.tokenIssuer.key.publicJwk] : []) });
  await app.register(
    async (v1) => {
      await v1.register(negotiationPlugin);
      patientsRoutes(v1, { patients, consents });
      donorsRoutes(v1, { donors: donors });
      lotsRoutes(v1, { lots });
      vialsRoutes(v1, { vials });
      recallNoticesRoutes(v1, { notices });
      proceduresRoutes(v1, { procedures });
      outcomesRoutes(v1, { outcomes });
      adverseEventsRoutes(v1, { adverseEvents });
      productsRoutes(v1, { products });
      auditRoutes(v1, { auditLog });
      eventsRoutes(v1, { feed });
      webhooksRoutes(v1, { webhooks });
      clientsRoutes(v1, { clients });
      traceabilityRoutes(v1, { reports, dossier });
      safetyRoutes(v1, { safety });
    },
    { prefix: '/v1' },
  );
  await app.register(
    async (r4) => {
      await r4.register(negotiationPlugin, { produces: FHIR_MEDIA_TYPES, notAcceptableResponse: operationOutcomeResponses(406), formatParameter: FHIR_FORMAT });
      fhirRoutes(r4, { fhir, search: fhirSearch, versions: fhirVersions, capability });
      bulkRoutes(r4, { bulk, capability });
    },
    { prefix: '/fhir/R4' },
  );
  return app;
}
