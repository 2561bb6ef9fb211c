import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { OptionalIfMatchHeaders } from '../../http/headers.js';
import { pageBody, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { ExpectedReactions, ExpectedReactionsHistory, ExpectedReactionsHistoryQuery, ExpectedReactionsPut, ProductParams } from './products.schemas.js';
import type { ProductsService } from './products.service.js';

const tags = ['products'];

/** A product's reference list of expected reactions (contract, "Safety"): supplier records, `lots:*` scopes. */
export function productsRoutes(app: FastifyInstance, { products }: { products: ProductsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/products/:productName/expected-reactions', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getExpectedReactions',
      tags,
      summary: 'Read a product\'s reference list of expected reactions (CTCAE terms)',
      description: '404 when the product has no list yet; a list emptied by PUT is 200 with `reactions: []`. The ETag is the list\'s version.',
      params: ProductParams,
      response: { 200: ExpectedReactions, ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const dto = await products.get(req.params.productName);
    setEtag(reply, dto.version);
    return dto;
  });

  r.put('/products/:productName/expected-reactions', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'putExpectedReactions',
      tags,
      summary: 'Record a product\'s whole reference list of expected reactions: a new version',
      description:
        'The first PUT creates the list (201, version 1; an If-Match then is 412). Once a list exists, If-Match with its ETag is required ' +
        '(428 without it, 412 when stale), and the PUT is a new version (200). Adverse events are judged against the list in force when ' +
        'they (or their term) are recorded: a change here does not re-judge events already recorded. The list is the supplier\'s: ' +
        'a token acting for a clinic is 403 `supplier-only`.',
      headers: OptionalIfMatchHeaders,
      params: ProductParams,
      body: ExpectedReactionsPut,
      response: { 200: ExpectedReactions, 201: ExpectedReactions, ...problemResponses(412, 428) },
    },
  }, async (req, reply) => {
    const expected = req.headers['if-match'] === undefined ? undefined : ifMatchVersion(req);
    const { list, created } = await products.put(actorOf(req), req.params.productName, req.body.reactions, expected);
    setEtag(reply, list.version);
    return reply.code(created ? 201 : 200).send(list);
  });

  r.get('/products/:productName/expected-reactions/history', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getExpectedReactionsHistory',
      tags,
      summary: 'Every version of a product\'s expected-reaction list, oldest first',
      params: ProductParams,
      querystring: ExpectedReactionsHistoryQuery,
      response: { 200: ExpectedReactionsHistory, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await products.history(actorOf(req), req.params.productName, versionPageRequest(req.query))));
}
