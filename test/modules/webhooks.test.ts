import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { EVENT_TYPES } from '../../src/modules/events/vocabulary.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody, uniq } from '../support/fixtures.js';
import { startReceiver, waitFor, type Answer, type Received, type Receiver } from '../support/receiver.js';

/**
 * Webhooks through HTTP, with real receivers on 127.0.0.1 (contract "Events and webhooks"). Every clinic is new
 * to its test, so what a receiver gets is that test's doing. No request leaves loopback: the production-setting
 * URLs below are refused before any connection or DNS lookup of a public name.
 */

const SCOPE = 'webhooks:read webhooks:write events:read';
const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;
type Http = TestApp['http'];

interface Subscription {
  id: string;
  url: string;
  types: string[];
  description: string | null;
  parallel: boolean;
  status: 'active' | 'paused' | 'disabled';
  disabledReason: string | null;
  failingSince: string | null;
  clinicId: string | null;
  previousSecretExpiresAt: string | null;
  version: number;
  createdBy: string;
  secret?: string;
}
interface Attempt {
  attempt: number;
  at: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  succeeded: boolean;
}
interface Delivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  cause: 'event' | 'replay' | 'retry';
  status: 'pending' | 'succeeded' | 'failed';
  nextAttemptAt: string | null;
  completedAt: string | null;
  attempts: Attempt[];
}
interface FeedEvent {
  id: string;
  type: string;
  occurredAt: string;
  clinicId: string | null;
  subject: { type: string; id: string };
  data: Record<string, unknown>;
}

const receivers: Receiver[] = [];
/** A receiver closed with the file. */
async function receiver(answer?: (r: Received, n: number) => Answer): Promise<Receiver> {
  const rx = await startReceiver(answer);
  receivers.push(rx);
  return rx;
}
const idOf = (r: Received) => r.headers['webhook-id']!;
const subjectsOf = (rx: Receiver) => rx.bodies().map((b) => b.subject.id);

async function subscribe(http: Http, token: string, body: Record<string, unknown>): Promise<Subscription & { secret: string }> {
  const res = await http.post('/v1/webhook-subscriptions').set(...bearer(token)).send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Subscription & { secret: string };
}
const read = (http: Http, token: string, id: string) => http.get(`/v1/webhook-subscriptions/${id}`).set(...bearer(token));
const patch = (http: Http, token: string, id: string, ifMatch: string | undefined, body: Record<string, unknown>) => {
  const req = http.patch(`/v1/webhook-subscriptions/${id}`).set(...bearer(token));
  return (ifMatch === undefined ? req : req.set('if-match', ifMatch)).send(body);
};
async function subscription(http: Http, token: string, id: string): Promise<Subscription> {
  const res = await read(http, token, id);
  expect(res.status).toBe(200);
  return res.body as Subscription;
}
async function deliveries(http: Http, token: string, id: string): Promise<Delivery[]> {
  const res = await http.get(`/v1/webhook-subscriptions/${id}/deliveries`).query({ limit: 200 }).set(...bearer(token));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items as Delivery[];
}
async function listed(http: Http, token: string): Promise<Subscription[]> {
  const res = await http.get('/v1/webhook-subscriptions').query({ limit: 200 }).set(...bearer(token));
  expect(res.status).toBe(200);
  return res.body.items as Subscription[];
}

/** Every event the token sees (of `types`), in feed order. */
async function feed(http: Http, token: string, types?: string): Promise<FeedEvent[]> {
  const out: FeedEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await http.get('/v1/events').query({ limit: 200, ...(types ? { types } : {}), ...(after ? { after } : {}) }).set(...bearer(token));
    expect(res.status).toBe(200);
    out.push(...(res.body.items as FeedEvent[]));
    if (res.body.items.length < 200) return out;
    after = res.body.nextCursor as string;
  }
}

/** The feed event of `type` about `subjectId`, once it is listed (a reader without clinic). */
async function eventAbout(app: TestApp, type: string, subjectId: string): Promise<FeedEvent> {
  const token = await app.token({ scope: 'events:read', clinic: null, sub: 'feed-reader' });
  let found: FeedEvent | undefined;
  await waitFor(async () => {
    found = (await feed(app.http, token, type)).find((e) => e.subject.id === subjectId);
    return found !== undefined;
  }, `${type} of ${subjectId} in the feed`);
  return found!;
}

/** What a delivery of `e` carries as its body. */
const bodyOf = (e: FeedEvent) => ({ type: e.type, timestamp: e.occurredAt, data: e.data, subject: e.subject, clinicId: e.clinicId });

/** A new clinic with a patient and a lot shipped to it, an integrator token of it, and a way to record procedures. */
async function clinic(app: TestApp, vials = 10) {
  const s = await clinicSetup(app, { clinic: `clinic-${uniq()}`, vials });
  const admin = await app.token({ scope: SCOPE, clinic: s.clinic, sub: `integrator-${s.clinic}` });
  return {
    ...s,
    admin,
    /** Records a procedure (one vial), answering its id. */
    async procedure(): Promise<string> {
      const p = await app.http.post('/v1/procedures').set(...bearer(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      return p.body.id as string;
    },
  };
}

const randomSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

let t: TestApp;
/** A token without clinic: every subscription, every event. */
let operator: string;
beforeAll(async () => {
  t = await createTestApp({ webhooks: { allowPrivateUrls: true, pollIntervalMs: 20, attemptTimeoutMs: 500, retryScheduleMs: [50, 50, 50] } });
  operator = await t.token({ scope: SCOPE, clinic: null, sub: 'operator' });
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await t?.close();
});

describe('subscriptions', () => {
  it('create: 201 with Location, ETag and the secret, which no later read shows', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const res = await t.http
      .post('/v1/webhook-subscriptions')
      .set(...bearer(c.admin))
      .send({ url: rx.url, types: ['procedure.created', 'outcome.created'], description: 'EHR inbox' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const created = res.body as Subscription & { secret: string };
    expect(res.headers.location).toBe(`/v1/webhook-subscriptions/${created.id}`);
    expect(res.headers.etag).toBe('"1"');
    expect(created).toMatchObject({
      url: rx.url,
      types: ['procedure.created', 'outcome.created'],
      description: 'EHR inbox',
      parallel: false,
      status: 'active',
      disabledReason: null,
      failingSince: null,
      clinicId: c.clinic,
      previousSecretExpiresAt: null,
      version: 1,
      createdBy: `integrator-${c.clinic}`,
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const { secret, ...shown } = created;

    const got = await read(t.http, c.admin, created.id);
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe('"1"');
    expect(got.body).toEqual(shown);
    const list = await t.http.get('/v1/webhook-subscriptions').set(...bearer(c.admin));
    expect(list.body.items).toEqual([shown]);
    const changed = await patch(t.http, c.admin, created.id, '"1"', { description: 'EHR inbox (prod)' });
    expect(changed.status).toBe(200);
    expect(changed.body).not.toHaveProperty('secret');
    for (const body of [got.body, list.body, changed.body, (await listed(t.http, operator)).find((s) => s.id === created.id)]) {
      expect(JSON.stringify(body)).not.toContain(secret.slice(6));
    }
  });

  it('refuses invalid bodies with 400 and stores nothing', async () => {
    const clinicId = `clinic-${uniq()}`;
    const admin = await t.token({ scope: SCOPE, clinic: clinicId });
    const url = 'http://127.0.0.1:9/hooks';
    const cases: [Record<string, unknown>, string][] = [
      [{ url, types: ['procedure.deleted'] }, 'types'],
      [{ url, types: [] }, 'types'],
      [{ url, types: ['procedure.created', 'procedure.created'] }, 'types'],
      [{ url: 'not a url', types: ['procedure.created'] }, 'url'],
      [{ url: 'ftp://127.0.0.1/hooks', types: ['procedure.created'] }, 'url'],
      [{ types: ['procedure.created'] }, 'url'],
      [{ url, types: ['procedure.created'], secret: 'whsec_mine' }, ''],
      [{ url, types: 'procedure.created' }, 'types'],
    ];
    for (const [body, field] of cases) {
      const res = await t.http.post('/v1/webhook-subscriptions').set(...bearer(admin)).send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.stringify(res.body.errors), JSON.stringify(body)).toContain(field);
    }
    expect(await listed(t.http, admin)).toEqual([]);
  });

  it('scopes: webhooks:read cannot create or change, events:read alone cannot list', async () => {
    const clinicId = `clinic-${uniq()}`;
    const reader = await t.token({ scope: 'webhooks:read', clinic: clinicId });
    const eventsOnly = await t.token({ scope: 'events:read', clinic: clinicId });
    const writer = await t.token({ scope: SCOPE, clinic: clinicId });
    const body = { url: 'http://127.0.0.1:9/hooks', types: ['procedure.created'] };
    expect((await t.http.post('/v1/webhook-subscriptions').set(...bearer(reader)).send(body)).status).toBe(403);
    expect((await t.http.get('/v1/webhook-subscriptions').set(...bearer(eventsOnly))).status).toBe(403);
    expect((await t.http.get('/v1/webhook-subscriptions')).status).toBe(401);
    const sub = await subscribe(t.http, writer, body);
    expect((await read(t.http, reader, sub.id)).status).toBe(200);
    expect((await read(t.http, eventsOnly, sub.id)).status).toBe(403);
    expect((await patch(t.http, reader, sub.id, '"1"', { status: 'paused' })).status).toBe(403);
    expect((await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(reader))).status).toBe(403);
    expect((await t.http.get(`/v1/webhook-subscriptions/${sub.id}/deliveries`).set(...bearer(reader))).status).toBe(200);
    expect((await listed(t.http, reader)).map((s) => s.id)).toEqual([sub.id]);
    await patch(t.http, writer, sub.id, '"1"', { status: 'paused' });
  });

  it("tenancy: another clinic gets 404 on every operation and does not list it; a token without clinic sees both", async () => {
    const a = await clinic(t);
    const b = await clinic(t);
    const rx = await receiver();
    const subA = await subscribe(t.http, a.admin, { url: rx.url, types: ['procedure.created'] });
    await a.procedure();
    await waitFor(() => rx.received.length === 1, 'the delivery to clinic A');
    await waitFor(async () => (await deliveries(t.http, a.admin, subA.id))[0]?.status === 'succeeded', 'recorded');
    const [delivery] = await deliveries(t.http, a.admin, subA.id);

    const base = `/v1/webhook-subscriptions/${subA.id}`;
    const asB = {
      get: read(t.http, b.admin, subA.id),
      patch: patch(t.http, b.admin, subA.id, '"1"', { status: 'paused' }),
      rotate: t.http.post(`${base}/rotate-secret`).set(...bearer(b.admin)),
      deliveries: t.http.get(`${base}/deliveries`).set(...bearer(b.admin)),
      retry: t.http.post(`${base}/deliveries/${delivery!.id}/retry`).set(...bearer(b.admin)),
      replay: t.http.post(`${base}/replay`).query({ after: delivery!.eventId }).set(...bearer(b.admin)),
    };
    for (const [what, req] of Object.entries(asB)) {
      const res = await req;
      expect(res.status, what).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain(rx.url);
    }
    const subB = await subscribe(t.http, b.admin, { url: rx.url, types: ['procedure.created'] });
    expect((await listed(t.http, b.admin)).map((s) => s.id)).toEqual([subB.id]);
    expect((await listed(t.http, a.admin)).map((s) => s.id)).toEqual([subA.id]);
    const all = (await listed(t.http, operator)).map((s) => s.id);
    expect(all).toContain(subA.id);
    expect(all).toContain(subB.id);
    // Untouched by clinic B: the same version, no rotation, no new delivery.
    const after = await subscription(t.http, a.admin, subA.id);
    expect(after).toMatchObject({ version: 1, status: 'active', previousSecretExpiresAt: null });
    expect(await deliveries(t.http, a.admin, subA.id)).toHaveLength(1);
    expect(rx.received).toHaveLength(1);
  });
});

describe('PATCH', () => {
  it('needs If-Match (428, 412 when stale); pause holds deliveries, resume delivers them; types change what is sent', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const control = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await subscribe(t.http, c.admin, { url: control.url, types: ['procedure.created', 'shipment.created'] });

    const missing = await patch(t.http, c.admin, sub.id, undefined, { status: 'paused' });
    expect(missing.status).toBe(428);
    const stale = await patch(t.http, c.admin, sub.id, '"7"', { status: 'paused' });
    expect(stale.status).toBe(412);
    expect((await subscription(t.http, c.admin, sub.id)).status).toBe('active');

    const paused = await patch(t.http, c.admin, sub.id, '"1"', { status: 'paused' });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ status: 'paused', version: 2 });
    expect(paused.headers.etag).toBe('"2"');
    const held = [await c.procedure(), await c.procedure()];
    // The control subscription got both: the dispatcher has been past them, and held them for the paused one.
    await waitFor(() => held.every((id) => subjectsOf(control).includes(id)), 'the control receiver');
    expect(rx.received).toHaveLength(0);
    expect(await deliveries(t.http, c.admin, sub.id)).toEqual([]);

    const resumed = await patch(t.http, c.admin, sub.id, paused.headers.etag, { status: 'active' });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active', version: 3 });
    await waitFor(() => rx.received.length >= 2, 'the held events');
    expect(subjectsOf(rx)).toEqual(held);

    const retyped = await patch(t.http, c.admin, sub.id, '"3"', { types: ['shipment.created'] });
    expect(retyped.status).toBe(200);
    expect(retyped.body).toMatchObject({ types: ['shipment.created'], version: 4 });
    const notWanted = await c.procedure();
    const shipment = await t.http.post(`/v1/lots/${c.lot.id}/shipments`).set(...bearer(c.supplier)).send({ clinicId: c.clinic, vials: 1, shippedAt: '2026-03-03T08:00:00Z' });
    expect(shipment.status).toBe(201);
    await waitFor(() => rx.received.length >= 3, 'the shipment');
    // In order, so the procedure before the shipment would have come first.
    expect(rx.bodies().map((b) => [b.type, b.subject.id])).toEqual([...held.map((id) => ['procedure.created', id]), ['shipment.created', shipment.body.id]]);
    await waitFor(() => subjectsOf(control).includes(shipment.body.id as string), 'the control receiver');
    expect(subjectsOf(control)).toContain(notWanted);

    for (const body of [{ status: 'disabled' }, { types: [] }, { url: 'not a url' }, { secret: 'whsec_x' }]) {
      const res = await patch(t.http, c.admin, sub.id, '"4"', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await subscription(t.http, c.admin, sub.id)).version).toBe(4);
  });
});

describe('delivery', () => {
  it('Standard Webhooks: signed (verified by the standardwebhooks library), webhook-id is the event id, the body is the event', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    const procedureId = await c.procedure();
    await waitFor(() => rx.received.length === 1, 'the delivery');
    const event = await eventAbout(t, 'procedure.created', procedureId);
    const [r] = rx.received;
    expect(r!.headers['webhook-id']).toBe(event.id);
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Math.abs(Number(r!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);

    const payload = new Webhook(sub.secret).verify(r!.body, r!.headers);
    expect(payload).toEqual(bodyOf(event));
    expect(JSON.parse(r!.body)).toEqual({
      type: 'procedure.created',
      timestamp: event.occurredAt,
      data: event.data,
      subject: { type: 'Procedure', id: procedureId },
      clinicId: c.clinic,
    });
    expect(event.data).toMatchObject({ procedureId, patientId: c.patientId, lotId: c.lot.id });
    // Another secret, a changed body or another id does not verify.
    expect(() => new Webhook(randomSecret()).verify(r!.body, r!.headers)).toThrow();
    expect(() => new Webhook(sub.secret).verify(r!.body.replace(c.patientId, randomUUID()), r!.headers)).toThrow();
    expect(() => new Webhook(sub.secret).verify(r!.body, { ...r!.headers, 'webhook-id': randomUUID() })).toThrow();
  });

  it("tenancy: clinic B's subscription never receives clinic A's procedure; one without clinic receives both", async () => {
    const a = await clinic(t);
    const b = await clinic(t);
    const [rxA, rxB, rxAll] = [await receiver(), await receiver(), await receiver()];
    const subB = await subscribe(t.http, b.admin, { url: rxB.url, types: ['procedure.created'] });
    await subscribe(t.http, a.admin, { url: rxA.url, types: ['procedure.created'] });
    const subAll = await subscribe(t.http, operator, { url: rxAll.url, types: ['procedure.created'] });
    expect(subAll.clinicId).toBeNull();
    const pA = await a.procedure();
    const pB = await b.procedure();
    // Each in order: had clinic A's (earlier) procedure been meant for B, it would have come first.
    await waitFor(() => rxB.received.length >= 1 && rxA.received.length >= 1, 'each clinic its own');
    await waitFor(() => [pA, pB].every((id) => subjectsOf(rxAll).includes(id)), 'both to the subscription without clinic');
    expect(subjectsOf(rxB)).toEqual([pB]);
    expect(subjectsOf(rxA)).toEqual([pA]);
    expect(rxB.bodies()[0]!.clinicId).toBe(b.clinic);
    expect(subjectsOf(rxAll).filter((id) => id === pA || id === pB)).toEqual([pA, pB]);
    const [eA, eB] = [await eventAbout(t, 'procedure.created', pA), await eventAbout(t, 'procedure.created', pB)];
    expect((await deliveries(t.http, b.admin, subB.id)).map((d) => d.eventId)).toEqual([eB.id]);
    expect(rxAll.ids().filter((id) => id === eA.id || id === eB.id)).toEqual([eA.id, eB.id]);
    await patch(t.http, operator, subAll.id, '"1"', { status: 'paused' });
  });

  it('a recall of a lot shipped to two clinics: each receives lot.recalled and its own recall-notice.created; a third nothing', async () => {
    const a = await clinic(t);
    const clinicB = `clinic-${uniq()}`;
    const clinicC = `clinic-${uniq()}`;
    const shipped = await t.http.post(`/v1/lots/${a.lot.id}/shipments`).set(...bearer(a.supplier)).send({ clinicId: clinicB, vials: 2, shippedAt: '2026-03-02T09:00:00Z' });
    expect(shipped.status).toBe(201);
    const tokenB = await t.token({ scope: SCOPE, clinic: clinicB });
    const tokenC = await t.token({ scope: SCOPE, clinic: clinicC });
    const types = ['lot.recalled', 'recall-notice.created'];
    const [rxA, rxB, rxC, rxAll] = [await receiver(), await receiver(), await receiver(), await receiver()];
    await subscribe(t.http, a.admin, { url: rxA.url, types });
    await subscribe(t.http, tokenB, { url: rxB.url, types });
    const subC = await subscribe(t.http, tokenC, { url: rxC.url, types });
    const subAll = await subscribe(t.http, operator, { url: rxAll.url, types });

    const recall = await t.http.post(`/v1/lots/${a.lot.id}/recall`).set(...bearer(a.supplier)).send({ reason: 'Endotoxin excursion on retain' });
    expect(recall.status).toBe(200);
    const notices = (await t.http.get(`/v1/lots/${a.lot.id}/recall-notices`).set(...bearer(a.supplier))).body.items as { id: string; clinicId: string }[];
    const noticeOf = (clinicId: string) => notices.find((n) => n.clinicId === clinicId)!.id;
    expect(notices.map((n) => n.clinicId).sort()).toEqual([a.clinic, clinicB].sort());
    const ofLot = (rx: Receiver) => rx.bodies().filter((b) => b.data.lotId === a.lot.id);
    await waitFor(() => ofLot(rxAll).length >= 3, 'the recall and both notices to the subscription without clinic');
    await waitFor(() => rxA.received.length >= 2 && rxB.received.length >= 2, 'both clinics');
    const recalled = await eventAbout(t, 'lot.recalled', a.lot.id);
    for (const [rx, clinicId] of [[rxA, a.clinic], [rxB, clinicB]] as const) {
      expect(rx.bodies().map((b) => [b.type, b.subject.id, b.clinicId])).toEqual([
        ['lot.recalled', a.lot.id, null],
        ['recall-notice.created', noticeOf(clinicId), clinicId],
      ]);
      expect(rx.ids()[0]).toBe(recalled.id);
    }
    expect(ofLot(rxAll).map((b) => b.type)).toEqual(['lot.recalled', 'recall-notice.created', 'recall-notice.created']);
    expect(rxC.received).toEqual([]);
    expect(await deliveries(t.http, tokenC, subC.id)).toEqual([]);
    await patch(t.http, operator, subAll.id, '"1"', { status: 'paused' });
  });

  it('each event type reaches its subscribers as the feed shows it, and a clinic only what it may see', async () => {
    const types = EVENT_TYPES.filter((type) => type !== 'lot.safety-signal');
    const rxAll = await receiver();
    const subAll = await subscribe(t.http, operator, { url: rxAll.url, types: [...EVENT_TYPES] });
    const c = await clinic(t);
    const rxClinic = await receiver();
    await subscribe(t.http, c.admin, { url: rxClinic.url, types: [...EVENT_TYPES] });
    const shipment = ((await t.http.get(`/v1/lots/${c.lot.id}/shipments`).set(...bearer(c.supplier))).body.items as { id: string }[])[0]!.id;
    const clinician = (req: ReturnType<Http['post']>) => req.set(...bearer(c.clinician));

    const procedureId = await c.procedure();
    const outcome = await clinician(t.http.post('/v1/outcomes')).send({ procedureId, instrument: 'nrs-pain', score: 7, assessedAt: '2026-03-10T08:00:00Z', timepoint: 'baseline' });
    expect(outcome.status).toBe(201);
    const ae = await clinician(t.http.post('/v1/adverse-events')).send({
      procedureId,
      onsetAt: '2026-03-11T08:00:00Z',
      description: 'Knee effusion',
      severityGrade: 2,
      serious: false,
      seriousnessCriteria: [],
      relatedness: 'probable',
      outcome: 'recovering',
    });
    expect(ae.status).toBe(201);
    expect((await t.http.patch(`/v1/adverse-events/${ae.body.id}`).set(...bearer(c.clinician)).set('if-match', '"1"').send({ severityGrade: 3 })).status).toBe(200);
    expect((await clinician(t.http.post(`/v1/procedures/${procedureId}/entered-in-error`)).set('if-match', '"1"').send({ reason: 'Wrong patient' })).status).toBe(200);
    expect((await t.http.post(`/v1/lots/${c.lot.id}/quarantine`).set(...bearer(c.supplier)).send({ reason: 'Excursion' })).status).toBe(200);
    expect((await t.http.post(`/v1/lots/${c.lot.id}/recall`).set(...bearer(c.supplier)).send({ reason: 'Excursion confirmed' })).status).toBe(200);
    const [notice] = (await t.http.get(`/v1/lots/${c.lot.id}/recall-notices`).set(...bearer(c.supplier))).body.items as { id: string }[];
    const clinicLots = await t.token({ scope: 'lots:read lots:write', clinic: c.clinic });
    expect((await t.http.post(`/v1/lots/${c.lot.id}/recall-notices/${notice!.id}/acknowledge`).set(...bearer(clinicLots))).status).toBe(200);
    const ineligible = await t.http.post(`/v1/donors/${c.donor.id}/eligibility`).set(...bearer(c.supplier)).send({ status: 'ineligible', determinedBy: 'Dr. Director', reason: 'Deferral' });
    expect(ineligible.status).toBe(201);

    const subjects = new Set([c.lot.id, shipment, procedureId, outcome.body.id, ae.body.id, notice!.id, c.donor.id]);
    const reader = await t.token({ scope: 'events:read', clinic: null });
    const ours = async () => (await feed(t.http, reader)).filter((e) => subjects.has(e.subject.id));
    await waitFor(async () => (await ours()).some((e) => e.type === 'donor.ineligible'), 'the last event in the feed');
    const expected = await ours();
    expect(new Set(expected.map((e) => e.type))).toEqual(new Set(types));
    await waitFor(() => rxAll.ids().includes(expected.at(-1)!.id), 'the last event delivered');
    const got = rxAll.received.filter((r) => expected.some((e) => e.id === idOf(r)));
    expect(got.map(idOf)).toEqual(expected.map((e) => e.id));
    for (const [i, r] of got.entries()) {
      expect(new Webhook(subAll.secret).verify(r.body, r.headers)).toEqual(bodyOf(expected[i]!));
    }

    // The clinic's subscription, made after the shipment: exactly the clinic's feed from there, in order.
    const clinicReader = await t.token({ scope: 'events:read', clinic: c.clinic });
    const clinicFeed = await feed(t.http, clinicReader);
    const sinceShipment = clinicFeed.slice(clinicFeed.findIndex((e) => e.subject.id === shipment) + 1);
    expect(sinceShipment.map((e) => e.type)).toEqual([
      'procedure.created',
      'outcome.created',
      'adverse-event.created',
      'adverse-event.updated',
      'procedure.entered-in-error',
      'lot.quarantined',
      'lot.recalled',
      'recall-notice.created',
      'recall-notice.acknowledged',
      'donor.ineligible',
    ]);
    await waitFor(() => rxClinic.ids().includes(sinceShipment.at(-1)!.id), 'the clinic receiver');
    const clinicGot = rxClinic.ids();
    expect(clinicGot.filter((id) => sinceShipment.some((e) => e.id === id))).toEqual(sinceShipment.map((e) => e.id));
    // Nothing it may not see (at most the release and shipment from just before it subscribed).
    expect(clinicFeed.map((e) => e.id)).toEqual(expect.arrayContaining(clinicGot));
    await patch(t.http, operator, subAll.id, '"1"', { status: 'paused' });
  });
});

describe('retries', () => {
  it('500 then 200: two requests with the same webhook-id; the attempts are listed with status and latency', async () => {
    const c = await clinic(t);
    const rx = await receiver((_r, n) => ({ status: n === 0 ? 500 : 200 }));
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    const procedureId = await c.procedure();
    await waitFor(() => rx.received.length === 2, 'the retry');
    const event = await eventAbout(t, 'procedure.created', procedureId);
    expect(rx.ids()).toEqual([event.id, event.id]);
    for (const r of rx.received) new Webhook(sub.secret).verify(r.body, r.headers);
    await waitFor(async () => (await deliveries(t.http, c.admin, sub.id))[0]?.status === 'succeeded', 'succeeded');
    const [d] = await deliveries(t.http, c.admin, sub.id);
    expect(d).toMatchObject({ subscriptionId: sub.id, eventId: event.id, eventType: 'procedure.created', cause: 'event', status: 'succeeded', nextAttemptAt: null });
    expect(d!.completedAt).not.toBeNull();
    expect(d!.attempts.map(({ attempt, statusCode, error, succeeded }) => ({ attempt, statusCode, error, succeeded }))).toEqual([
      { attempt: 1, statusCode: 500, error: 'HTTP 500', succeeded: false },
      { attempt: 2, statusCode: 200, error: null, succeeded: true },
    ]);
    for (const a of d!.attempts) expect(a.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(d!.attempts[1]!.at) - Date.parse(d!.attempts[0]!.at)).toBeGreaterThanOrEqual(50);
    // The success ends the failing streak.
    expect((await subscription(t.http, c.admin, sub.id)).failingSince).toBeNull();
  });

  it('a receiver slower than the timeout: retried with the same webhook-id, the attempt says timeout', async () => {
    const c = await clinic(t);
    const rx = await receiver((_r, n) => (n === 0 ? { status: 200, delayMs: 1200 } : { status: 200 }));
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await c.procedure();
    await waitFor(() => rx.received.length === 2, 'the retry');
    expect(new Set(rx.ids()).size).toBe(1);
    await waitFor(async () => (await deliveries(t.http, c.admin, sub.id))[0]?.status === 'succeeded', 'succeeded');
    const [d] = await deliveries(t.http, c.admin, sub.id);
    expect(d!.eventId).toBe(rx.ids()[0]);
    const [first, second] = d!.attempts;
    expect(first).toMatchObject({ attempt: 1, statusCode: null, succeeded: false });
    expect(first!.error).toMatch(/timeout/);
    expect(first!.latencyMs).toBeGreaterThanOrEqual(490);
    expect(first!.latencyMs).toBeLessThan(1000);
    expect(second).toMatchObject({ attempt: 2, statusCode: 200, error: null, succeeded: true });
  });

  it('a delivery that fails every attempt ends failed once the schedule is spent', async () => {
    const c = await clinic(t);
    const rx = await receiver(() => ({ status: 503 }));
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await c.procedure();
    await waitFor(async () => (await deliveries(t.http, c.admin, sub.id))[0]?.status === 'failed', 'failed');
    const [d] = await deliveries(t.http, c.admin, sub.id);
    // The first attempt and one per wait of the schedule [50, 50, 50].
    expect(d!.attempts.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([1, 2, 3, 4].map((n) => [n, 503, 'HTTP 503']));
    expect(d).toMatchObject({ status: 'failed', nextAttemptAt: null });
    expect(d!.completedAt).not.toBeNull();
    expect(rx.ids()).toEqual(Array(4).fill(d!.eventId));
    const after = await subscription(t.http, c.admin, sub.id);
    // Failing, but not for 3 days: still active.
    expect(after).toMatchObject({ status: 'active', disabledReason: null, failingSince: d!.attempts[0]!.at });
  });
});

describe('disabling', () => {
  it('410 Gone disables the subscription (saying so); later events wait; PATCH status active re-enables', async () => {
    const c = await clinic(t);
    let answer = 410;
    const rx = await receiver(() => ({ status: answer }));
    const control = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await subscribe(t.http, c.admin, { url: control.url, types: ['procedure.created'] });
    const p1 = await c.procedure();
    await waitFor(async () => (await subscription(t.http, c.admin, sub.id)).status === 'disabled', 'disabled');
    const disabled = await read(t.http, c.admin, sub.id);
    expect(disabled.body.disabledReason).toMatch(/^The receiver answered 410 Gone at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.$/);
    expect(disabled.body.version).toBe(2);
    expect(disabled.headers.etag).toBe('"2"');
    const [d1] = await deliveries(t.http, c.admin, sub.id);
    expect(d1).toMatchObject({ status: 'failed', attempts: [{ attempt: 1, statusCode: 410, succeeded: false }] });

    const p2 = await c.procedure();
    await waitFor(() => subjectsOf(control).includes(p2), 'the control receiver');
    expect(subjectsOf(rx)).toEqual([p1]);
    expect(await deliveries(t.http, c.admin, sub.id)).toHaveLength(1);

    answer = 200;
    const enabled = await patch(t.http, c.admin, sub.id, '"2"', { status: 'active' });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ status: 'active', disabledReason: null, failingSince: null, version: 3 });
    const p3 = await c.procedure();
    // What happened while it was disabled was held, as for a pause.
    await waitFor(() => subjectsOf(rx).includes(p3), 'a later event');
    expect(subjectsOf(rx)).toEqual([p1, p2, p3]);
  });

  it('failing since longer than disableAfterMs disables the subscription, saying since when', async () => {
    const other = await createTestApp({ webhooks: { allowPrivateUrls: true, pollIntervalMs: 20, attemptTimeoutMs: 500, retryScheduleMs: Array(30).fill(60), disableAfterMs: 300 } });
    try {
      const c = await clinic(other);
      const rx = await receiver(() => ({ status: 500 }));
      const control = await receiver();
      const sub = await subscribe(other.http, c.admin, { url: rx.url, types: ['procedure.created'] });
      await subscribe(other.http, c.admin, { url: control.url, types: ['procedure.created'] });
      await c.procedure();
      await waitFor(async () => (await subscription(other.http, c.admin, sub.id)).status === 'disabled', 'disabled');
      const disabled = await subscription(other.http, c.admin, sub.id);
      const [d] = await deliveries(other.http, c.admin, sub.id);
      const attempts = d!.attempts;
      const since = attempts[0]!.at;
      expect(disabled.failingSince).toBe(since);
      expect(disabled.disabledReason).toBe(`Every delivery failed since ${since.slice(0, 19)}Z (last: HTTP 500).`);
      // Disabled by the first attempt 300 ms after the first failure, not before.
      const elapsed = attempts.map((a) => Date.parse(a.at) - Date.parse(since));
      expect(elapsed.at(-1)).toBeGreaterThanOrEqual(300);
      expect(elapsed.at(-2)).toBeLessThan(300);
      expect(d!.status).toBe('pending');
      // No attempt after that: a later event is delivered elsewhere, not here.
      const n = rx.received.length;
      expect(n).toBe(attempts.length);
      const later = await c.procedure();
      await waitFor(() => subjectsOf(control).includes(later), 'the control receiver');
      expect(rx.received).toHaveLength(n);
      expect((await deliveries(other.http, c.admin, sub.id))[0]!.attempts).toHaveLength(n);
    } finally {
      await other.close();
    }
  });
});

describe('replay and retry', () => {
  it('replay ?after= and { after } send the later events again in order, same webhook-ids; retry sends one again', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    const procedures = [await c.procedure(), await c.procedure(), await c.procedure()];
    await waitFor(() => rx.received.length === 3, 'three deliveries');
    expect(subjectsOf(rx)).toEqual(procedures);
    const ids = rx.ids();
    const replay = `/v1/webhook-subscriptions/${sub.id}/replay`;

    const byQuery = await t.http.post(replay).query({ after: ids[0] }).set(...bearer(c.admin));
    expect(byQuery.status, JSON.stringify(byQuery.body)).toBe(202);
    expect(byQuery.body).toEqual({ replayed: 2, lastEventId: ids[2], limit: 10_000 });
    await waitFor(() => rx.received.length === 5, 'the replay');
    expect(rx.ids().slice(3)).toEqual([ids[1], ids[2]]);

    const byBody = await t.http.post(replay).set(...bearer(c.admin)).send({ after: ids[1] });
    expect(byBody.status).toBe(202);
    expect(byBody.body).toEqual({ replayed: 1, lastEventId: ids[2], limit: 10_000 });
    await waitFor(() => rx.received.length === 6, 'the second replay');
    expect(rx.ids()[5]).toBe(ids[2]);
    for (const r of rx.received) new Webhook(sub.secret).verify(r.body, r.headers);
    expect(rx.bodies().slice(3).map((b) => b.subject.id)).toEqual([procedures[1], procedures[2], procedures[2]]);

    const nothingAfter = await t.http.post(replay).query({ after: ids[2] }).set(...bearer(c.admin));
    expect(nothingAfter.body).toEqual({ replayed: 0, lastEventId: null, limit: 10_000 });

    const elsewhere = await clinic(t);
    const foreign = await eventAbout(t, 'procedure.created', await elsewhere.procedure());
    for (const res of [
      await t.http.post(replay).query({ after: foreign.id }).set(...bearer(c.admin)),
      await t.http.post(replay).query({ after: randomUUID() }).set(...bearer(c.admin)),
      await t.http.post(replay).set(...bearer(c.admin)),
      await t.http.post(replay).query({ after: ids[0] }).set(...bearer(c.admin)).send({ after: ids[1] }),
      await t.http.post(replay).query({ after: 'yesterday' }).set(...bearer(c.admin)),
    ]) {
      expect(res.status, JSON.stringify(res.body)).toBe(400);
    }
    expect((await t.http.post(replay).query({ after: foreign.id }).set(...bearer(c.admin))).body.code).toBe('invalid-cursor');

    await waitFor(async () => (await deliveries(t.http, c.admin, sub.id)).every((d) => d.status === 'succeeded'), 'all recorded');
    const listedDeliveries = await deliveries(t.http, c.admin, sub.id);
    expect(listedDeliveries.map((d) => [d.cause, d.eventId])).toEqual([
      ['replay', ids[2]],
      ['replay', ids[2]],
      ['replay', ids[1]],
      ['event', ids[2]],
      ['event', ids[1]],
      ['event', ids[0]],
    ]);

    const original = listedDeliveries.at(-1)!;
    const retried = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${original.id}/retry`).set(...bearer(c.admin));
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ subscriptionId: sub.id, eventId: ids[0], eventType: 'procedure.created', cause: 'retry', status: 'pending', attempts: [] });
    expect(retried.body.id).not.toBe(original.id);
    await waitFor(() => rx.received.length === 7, 'the retried delivery');
    expect(rx.ids()[6]).toBe(ids[0]);
    await waitFor(async () => (await deliveries(t.http, c.admin, sub.id))[0]?.status === 'succeeded', 'recorded');
    const [newest] = await deliveries(t.http, c.admin, sub.id);
    expect(newest).toMatchObject({ id: retried.body.id, cause: 'retry', status: 'succeeded', attempts: [{ attempt: 1, statusCode: 200, succeeded: true }] });
    expect((await t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${randomUUID()}/retry`).set(...bearer(c.admin))).status).toBe(404);

    // A token without clinic may not act on a clinic's subscription (403, nothing queued); the clinic retries
    // again, and its audit trail shows every retry and replay of its subscription.
    const refused = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${original.id}/retry`).set(...bearer(operator));
    expect(refused.status).toBe(403);
    const byOperator = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${original.id}/retry`).set(...bearer(c.admin));
    expect(byOperator.status).toBe(202);
    await waitFor(() => rx.received.length === 8, 'the second retry');
    const auditor = await t.token({ scope: 'audit:read', clinic: c.clinic });
    const audit = await t.http.get('/v1/audit-events').query({ resourceType: 'webhook-subscription', resourceId: sub.id }).set(...bearer(auditor));
    expect(audit.status).toBe(200);
    const entries = audit.body.items as { action: string; clinicId: string | null; details: Record<string, unknown> }[];
    expect(entries.filter((e) => 'retried' in e.details).map((e) => e.details.delivery).sort()).toEqual([retried.body.id, byOperator.body.id].sort());
    expect(entries.filter((e) => 'replayedAfter' in e.details)).toHaveLength(3);
    for (const e of entries) expect(e.clinicId).toBe(c.clinic);
  });
});

describe('secret rotation', () => {
  it('after rotate-secret both the old and the new secret verify for 24 h; the answer shows the new secret once', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await c.procedure();
    await waitFor(() => rx.received.length === 1, 'the first delivery');
    expect(rx.received[0]!.headers['webhook-signature']!.split(' ')).toHaveLength(1);

    const rotated = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(c.admin));
    expect(rotated.status).toBe(200);
    expect(rotated.headers.etag).toBe('"2"');
    const fresh = rotated.body.secret as string;
    expect(fresh).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(fresh).not.toBe(sub.secret);
    expect(rotated.body.version).toBe(2);
    expect(Math.abs(Date.parse(rotated.body.previousSecretExpiresAt) - (Date.now() + 24 * 3600_000))).toBeLessThan(60_000);
    const got = await read(t.http, c.admin, sub.id);
    expect(got.body).not.toHaveProperty('secret');
    expect(got.body.previousSecretExpiresAt).toBe(rotated.body.previousSecretExpiresAt);
    expect(JSON.stringify(got.body)).not.toContain(fresh.slice(6));

    await c.procedure();
    await waitFor(() => rx.received.length === 2, 'the delivery after the rotation');
    const r = rx.received[1]!;
    const signatures = r.headers['webhook-signature']!.split(' ');
    expect(signatures).toHaveLength(2);
    for (const s of signatures) expect(s).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    const payload = new Webhook(fresh).verify(r.body, r.headers);
    expect(new Webhook(sub.secret).verify(r.body, r.headers)).toEqual(payload);
    expect(() => new Webhook(randomSecret()).verify(r.body, r.headers)).toThrow();
  });
});

describe('ordering', () => {
  it('an ordered subscription holds the next event until the failing one succeeds; a parallel one does not', async () => {
    const c = await clinic(t);
    /** Fails the first request of the first event it sees, slowly (400 ms, within the 500 ms timeout). */
    const failFirstSlowly = () => {
      let first: string | undefined;
      return (r: Received, n: number): Answer => {
        first ??= idOf(r);
        return idOf(r) === first && n === 0 ? { status: 500, delayMs: 400 } : { status: 200 };
      };
    };
    const rxOrdered = await receiver(failFirstSlowly());
    const rxParallel = await receiver(failFirstSlowly());
    const ordered = await subscribe(t.http, c.admin, { url: rxOrdered.url, types: ['procedure.created'] });
    const parallel = await subscribe(t.http, c.admin, { url: rxParallel.url, types: ['procedure.created'], parallel: true });
    expect([ordered.parallel, parallel.parallel]).toEqual([false, true]);
    const p1 = await c.procedure();
    const p2 = await c.procedure();
    await waitFor(() => rxOrdered.received.length === 3 && rxParallel.received.length === 3, 'both events to both');
    expect(subjectsOf(rxOrdered)).toEqual([p1, p1, p2]);
    expect(subjectsOf(rxParallel)).toEqual([p1, p2, p1]);
    for (const sub of [ordered, parallel]) {
      await waitFor(async () => (await deliveries(t.http, c.admin, sub.id)).every((d) => d.status === 'succeeded'), 'recorded');
      expect((await deliveries(t.http, c.admin, sub.id)).map((d) => d.attempts.map((a) => a.statusCode))).toEqual([[200], [500, 200]]);
    }
  });
});

describe('no server-side request forgery (production settings)', () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await createTestApp({ webhooks: { allowPrivateUrls: false, pollIntervalMs: 0 } });
  });
  afterAll(() => prod?.close());

  it('refuses loopback, private and non-https URLs with 422 webhook-url-refused, storing nothing', async () => {
    const admin = await prod.token({ scope: SCOPE, clinic: `clinic-${uniq()}` });
    const refused = [
      'https://127.0.0.1/x',
      'https://[::1]/x',
      'https://localhost/x',
      'https://LOCALHOST./x',
      'https://api.localhost/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://127.1/x',
      'https://2130706433/x',
      'https://0x7f.0.0.1/x',
      'https://[::]/x',
      'https://0.0.0.0/x',
      'https://10.1.2.3/x',
      'https://192.168.0.10/x',
      'https://169.254.169.254/latest/meta-data',
      'https://[fe80::1]/x',
      'https://[fd00:ec2::254]/x',
      'http://example.org/x',
    ];
    for (const url of refused) {
      const res = await prod.http.post('/v1/webhook-subscriptions').set(...bearer(admin)).send({ url, types: ['procedure.created'] });
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(422);
      expect(res.body.code).toBe('webhook-url-refused');
      expect(res.body.errors).toEqual([{ path: 'body.url', message: expect.any(String) }]);
    }
    expect(await listed(prod.http, admin)).toEqual([]);
    expect(await listed(prod.http, await prod.token({ scope: SCOPE, clinic: null }))).toEqual([]);
  });

  it('checks the address again at delivery: a loopback subscription made elsewhere is refused, the receiver gets nothing', async () => {
    // Made by an instance that allows private URLs (development settings), on the same database.
    const dev = await prod.another({ webhooks: { allowPrivateUrls: true, pollIntervalMs: 0 } });
    const rx = await receiver();
    const c = await clinic(prod);
    // https (so only the address is wrong): the production dispatcher refuses before any connection or TLS.
    const byAddress = await subscribe(dev.http, c.admin, { url: `https://127.0.0.1:${rx.port}/hooks`, types: ['procedure.created'] });
    const byName = await subscribe(dev.http, c.admin, { url: `https://localhost:${rx.port}/hooks`, types: ['procedure.created'] });
    const changed = await patch(prod.http, c.admin, byAddress.id, '"1"', { url: `https://[::1]:${rx.port}/hooks` });
    expect(changed.status).toBe(422);
    expect(changed.body.code).toBe('webhook-url-refused');
    await c.procedure();

    // Delivered by the production instance only: drive its dispatcher.
    const dispatcher = prod.app.webhookDispatcher;
    const attempted = async (id: string) => (await deliveries(prod.http, c.admin, id))[0]?.attempts[0];
    await waitFor(async () => {
      await dispatcher.tick();
      await dispatcher.idle();
      return (await attempted(byAddress.id)) !== undefined && (await attempted(byName.id)) !== undefined;
    }, 'an attempt of each');
    for (const id of [byAddress.id, byName.id]) {
      const a = await attempted(id);
      expect(a).toMatchObject({ attempt: 1, statusCode: null, succeeded: false });
      expect(a!.error).toMatch(/^refused: .*loopback address/);
    }
    expect(rx.received).toEqual([]);
  });
});

describe('several instances', () => {
  let multi: TestApp;
  const options = { allowPrivateUrls: true, pollIntervalMs: 5, concurrency: 32, attemptTimeoutMs: 3000, retryScheduleMs: [50, 50, 50] };
  beforeAll(async () => {
    multi = await createTestApp({ webhooks: options });
    await multi.another({ webhooks: options });
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await multi?.close();
  });

  it('two instances never attempt one delivery at the same time: 30 events arrive once each', async () => {
    const c = await clinic(multi, 40);
    const slow = (): Answer => ({ status: 200, delayMs: 50 + Math.floor(Math.random() * 50) });
    let mostAtOnce = 0;
    const rxOrdered = await receiver(slow);
    const rxParallel: Receiver = await receiver(() => {
      mostAtOnce = Math.max(mostAtOnce, rxParallel.inFlight);
      return slow();
    });
    const ordered = await subscribe(multi.http, c.admin, { url: rxOrdered.url, types: ['procedure.created'] });
    const parallel = await subscribe(multi.http, c.admin, { url: rxParallel.url, types: ['procedure.created'], parallel: true });
    const procedures: string[] = [];
    for (let i = 0; i < 30; i++) procedures.push(await c.procedure());
    await waitFor(() => new Set(rxOrdered.ids()).size === 30 && new Set(rxParallel.ids()).size === 30, 'every event to both', 20_000);

    const reader = await multi.token({ scope: 'events:read', clinic: c.clinic });
    const events = (await feed(multi.http, reader, 'procedure.created')).filter((e) => procedures.includes(e.subject.id));
    expect(events.map((e) => e.subject.id)).toEqual(procedures);
    const ids = events.map((e) => e.id);
    expect(rxOrdered.ids()).toEqual(ids);
    expect([...rxParallel.ids()].sort()).toEqual([...ids].sort());
    expect(rxParallel.maxInFlightPerId).toBe(1);
    expect(rxOrdered.maxInFlightPerId).toBe(1);
    // The parallel one had several in flight at once (so the one-at-a-time per id above means something).
    expect(mostAtOnce).toBeGreaterThan(1);
    for (const sub of [ordered, parallel]) {
      await waitFor(async () => (await deliveries(multi.http, c.admin, sub.id)).every((d) => d.status === 'succeeded'), 'all recorded');
      const list = await deliveries(multi.http, c.admin, sub.id);
      expect(list).toHaveLength(30);
      for (const d of list) expect(d.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([[1, 200]]);
    }
  });

  it('a slow parallel subscription with a backlog takes a share of the slots, not all: others are delivered meanwhile', async () => {
    const c = await clinic(multi, 40);
    let mostAtOnce = 0;
    const rxSlow: Receiver = await receiver(() => {
      mostAtOnce = Math.max(mostAtOnce, rxSlow.inFlight);
      return { status: 200, delayMs: 1500 };
    });
    const rxOther = await receiver();
    const slow = await subscribe(multi.http, c.admin, { url: rxSlow.url, types: ['procedure.created'], parallel: true });
    // Held while the backlog builds, so that all of it is due at once when it resumes.
    expect((await patch(multi.http, c.admin, slow.id, '"1"', { status: 'paused' })).status).toBe(200);
    for (let i = 0; i < 16; i++) await c.procedure();
    expect((await patch(multi.http, c.admin, slow.id, '"2"', { status: 'active' })).status).toBe(200);
    await waitFor(() => rxSlow.inFlight > 0, 'the backlog in flight', 3000);
    await subscribe(multi.http, c.admin, { url: rxOther.url, types: ['procedure.created'], parallel: true });
    const started = Date.now();
    const p = await c.procedure();
    await waitFor(() => subjectsOf(rxOther).includes(p), 'the other subscription served while the backlog waits', 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    // A parallel subscription has at most 4 attempts in flight, on both instances together (its clinic at most 8).
    expect(mostAtOnce).toBeLessThanOrEqual(4);
    expect(mostAtOnce).toBeGreaterThan(1);
  });

  it('a slow receiver slows neither another subscription nor a clinical write', async () => {
    const c = await clinic(multi);
    const rxSlow = await receiver(() => ({ status: 200, delayMs: 2000 }));
    const rxFast = await receiver();
    await subscribe(multi.http, c.admin, { url: rxSlow.url, types: ['procedure.created'] });
    await subscribe(multi.http, c.admin, { url: rxFast.url, types: ['procedure.created'] });
    const p1 = await c.procedure();
    await waitFor(() => rxSlow.inFlight === 1 && rxFast.received.length === 1, 'the first event to both', 3000);
    const started = Date.now();
    const p2 = await c.procedure();
    expect(Date.now() - started).toBeLessThan(1000);
    await waitFor(() => rxFast.received.length === 2, 'the second event to the fast receiver', 1000);
    expect(subjectsOf(rxFast)).toEqual([p1, p2]);
    // Meanwhile the slow one is still on its first event.
    expect(rxSlow.inFlight).toBe(1);
    expect(subjectsOf(rxSlow)).toEqual([p1]);
  });
});

describe('what an integrator tried (review findings)', () => {
  it('retry and replay honour Idempotency-Key: the same key answers the first result and queues nothing more', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    await c.procedure();
    await c.procedure();
    await waitFor(() => rx.received.length === 2, 'two deliveries');
    const [first] = await deliveries(t.http, c.admin, sub.id).then((d) => d.slice(-1));
    const retry = () => t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${first!.id}/retry`).set(...bearer(c.admin)).set('idempotency-key', 'retry-once');
    const r1 = await retry();
    const r2 = await retry();
    expect(r1.status).toBe(202);
    expect(r2.status).toBe(202);
    expect(r2.body.id).toBe(r1.body.id);
    const replay = () => t.http.post(`/v1/webhook-subscriptions/${sub.id}/replay`).query({ after: first!.eventId }).set(...bearer(c.admin)).set('idempotency-key', 'replay-once');
    const p1 = await replay();
    const p2 = await replay();
    expect(p1.body).toMatchObject({ replayed: 1 });
    expect(p2.body).toEqual(p1.body);
    await waitFor(() => rx.received.length === 4, 'the retry and the replay');
    const list = await deliveries(t.http, c.admin, sub.id);
    expect(list.map((d) => d.cause).sort()).toEqual(['event', 'event', 'replay', 'retry']);
  });

  it('POSTs that take no body refuse one with unknown fields (400), changing nothing', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    const rotate = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(c.admin)).send({ x: 1 });
    expect(rotate.status).toBe(400);
    expect((await subscription(t.http, c.admin, sub.id)).version).toBe(1);
    await c.procedure();
    await waitFor(() => rx.received.length === 1, 'a delivery');
    const [d] = await deliveries(t.http, c.admin, sub.id);
    const retry = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/deliveries/${d!.id}/retry`).set(...bearer(c.admin)).send({ foo: 1 });
    expect(retry.status).toBe(400);
    expect(await deliveries(t.http, c.admin, sub.id)).toHaveLength(1);
  });

  it('a URL the parser would change is refused, not cleaned up: what is sent is what is stored', async () => {
    const c = await clinic(t);
    for (const url of [
      'http://127.0.0.1:4200/\r\nX-Injected: 1',
      'http://127.0.0.1:4200/\thooks',
      ' http://127.0.0.1:4200/hooks',
      'http://127.0.0.1:4200/a b',
      'http:///hooks',
      'http://127.0.0.1:0/hooks',
      'http://user:pw@127.0.0.1:4200/hooks',
      'http://127.0.0.1:4200/hooks#frag',
      'http://bücher.example/hooks',
    ]) {
      const res = await t.http.post('/v1/webhook-subscriptions').set(...bearer(c.admin)).send({ url, types: ['procedure.created'] });
      expect(res.status, url).toBe(400);
    }
    expect(await listed(t.http, c.admin)).toEqual([]);
    const ok = await subscribe(t.http, c.admin, { url: 'http://127.0.0.1:4200/hooks?x=1', types: ['procedure.created'] });
    expect(ok.url).toBe('http://127.0.0.1:4200/hooks?x=1');
  });

  it('two rotations within 24 h: the original secret still verifies beside both new ones', async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    const second = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(c.admin));
    const third = await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(c.admin));
    expect(third.status).toBe(200);
    await c.procedure();
    await waitFor(() => rx.received.length === 1, 'a delivery');
    const r = rx.received[0]!;
    expect(r.headers['webhook-signature']!.split(' ')).toHaveLength(3);
    for (const secret of [sub.secret, second.body.secret as string, third.body.secret as string]) {
      expect(() => new Webhook(secret).verify(r.body, r.headers)).not.toThrow();
    }
  });

  it("a token without clinic reads a clinic's subscription but cannot change it (403), so it cannot redirect its deliveries", async () => {
    const c = await clinic(t);
    const rx = await receiver();
    const sub = await subscribe(t.http, c.admin, { url: rx.url, types: ['procedure.created'] });
    expect((await read(t.http, operator, sub.id)).status).toBe(200);
    const changed = await patch(t.http, operator, sub.id, '"1"', { url: 'http://127.0.0.1:1/elsewhere' });
    expect(changed.status).toBe(403);
    expect(changed.body.code).toBe('clinic-subscription');
    expect((await t.http.post(`/v1/webhook-subscriptions/${sub.id}/rotate-secret`).set(...bearer(operator))).status).toBe(403);
    expect((await subscription(t.http, c.admin, sub.id)).url).toBe(rx.url);
  });

  it('a clinic keeps at most 25 subscriptions that are not disabled (422), also under concurrent creates', async () => {
    const c = await clinic(t);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => t.http.post('/v1/webhook-subscriptions').set(...bearer(c.admin)).send({ url: `http://127.0.0.1:4200/h${i}`, types: ['procedure.created'] })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(25);
    expect(results.filter((r) => r.status === 422).every((r) => r.body.code === 'subscription-limit')).toBe(true);
    expect(await listed(t.http, c.admin)).toHaveLength(25);
  });

  it('who sees a supplier event is fixed when it is written: the feed never fills in behind a cursor, and webhooks agree', async () => {
    const supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa' });
    const c = await clinic(t);
    const rx = await receiver();
    await subscribe(t.http, c.admin, { url: rx.url, types: ['lot.released', 'lot.recalled', 'shipment.created'] });
    const reader = await t.token({ scope: 'events:read', clinic: c.clinic });
    // A lot released before it reaches the clinic, then shipped to it, then recalled.
    const other = await clinicSetup(t, { clinic: `clinic-${uniq()}` });
    const lotId = other.lot.id;
    const before = await feed(t.http, reader);
    const cursor = before.at(-1)!.id;
    const shipped = await t.http.post(`/v1/lots/${lotId}/shipments`).set(...bearer(supplier)).send({ clinicId: c.clinic, vials: 1 });
    expect(shipped.status).toBe(201);
    expect((await t.http.post(`/v1/lots/${lotId}/recall`).set(...bearer(supplier)).send({ reason: 'Sterility failure' })).status).toBe(200);
    await waitFor(async () => (await feed(t.http, reader)).some((e) => e.type === 'lot.recalled' && e.subject.id === lotId), 'the recall in the feed');
    const after = await feed(t.http, reader);
    // Nothing appeared before the cursor; the lot's release (before it reached the clinic) is not the clinic's.
    expect(after.slice(0, before.length).map((e) => e.id)).toEqual(before.map((e) => e.id));
    expect(after.map((e) => e.id)).toContain(cursor);
    const aboutLot = after.filter((e) => e.subject.id === lotId || e.data.lotId === lotId).map((e) => e.type);
    expect(aboutLot).toEqual(['shipment.created', 'lot.recalled', 'recall-notice.created']);
    await waitFor(() => rx.bodies().filter((b) => b.data.lotId === lotId).length === 2, 'the same two delivered');
    expect(rx.bodies().filter((b) => b.data.lotId === lotId).map((b) => b.type)).toEqual(['shipment.created', 'lot.recalled']);
  });
});

describe('fairness between subscriptions (default slots)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ webhooks: { allowPrivateUrls: true, pollIntervalMs: 20, attemptTimeoutMs: 3000, retryScheduleMs: [200, 200, 200] } });
  });
  afterAll(() => app?.close());

  it("one clinic's 25 hanging receivers do not hold up another clinic's recall notice", async () => {
    const supplier = await app.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa' });
    const b = await clinic(app);
    const hanging = await receiver(() => ({ status: 200, delayMs: 10_000 }));
    for (let i = 0; i < 25; i++) await subscribe(app.http, b.admin, { url: `${hanging.url}/${i}`, types: ['shipment.created'], parallel: i % 2 === 0 });
    const a = await clinic(app);
    const rx = await receiver();
    await subscribe(app.http, a.admin, { url: rx.url, types: ['recall-notice.created'] });
    // A backlog for clinic b's hanging receivers, then the recall of a lot both clinics hold.
    for (let i = 0; i < 6; i++) {
      expect((await app.http.post(`/v1/lots/${a.lot.id}/shipments`).set(...bearer(supplier)).send({ clinicId: b.clinic, vials: 1 })).status).toBe(201);
    }
    await waitFor(() => hanging.inFlight >= 20, 'clinic b hanging', 5000);
    const started = Date.now();
    expect((await app.http.post(`/v1/lots/${a.lot.id}/recall`).set(...bearer(supplier)).send({ reason: 'Sterility failure' })).status).toBe(200);
    await waitFor(() => rx.received.length === 1, "clinic a's notice", 2000);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
