import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { buildProblem, problemType, sendProblem, titleFor, PROBLEM_CONTENT_TYPE } from './problem.js';
import type { ProblemBody } from '../shared/schemas.js';

/**
 * Errors raised before a route is found, which Fastify would answer in its own JSON shape: a path whose
 * percent-escapes are not UTF-8 (`/v1/patients/%E9`), a path parameter over the router's length limit.
 * They leave as problem+json like every other error (`render` lets the FHIR facade answer OperationOutcome).
 */
export function frameworkErrorHandler(render: (req: FastifyRequest, reply: FastifyReply, problem: ProblemBody) => unknown) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const problem =
      err.code === 'FST_ERR_BAD_URL'
        ? buildProblem(req, 400, 'invalid-path', 'The request path holds a percent-escape that does not decode to UTF-8.', {
            errors: [{ path: 'path', message: 'is not percent-encoded UTF-8' }],
          })
        : buildProblem(req, 414, 'uri-too-long', 'A path parameter is longer than this service accepts.');
    reply.header('X-Request-Id', String(req.id));
    return render(req, reply, problem);
  };
}

export const sendProblemOf = (_req: FastifyRequest, reply: FastifyReply, problem: ProblemBody) => sendProblem(reply, problem);

/**
 * A request Node's HTTP parser refuses (a NUL or raw non-ASCII byte in the request line or a header, a header
 * section over the limit, a request that never finished arriving): answered as problem+json, then closed;
 * `render` may answer another form for a path it recognises in the bytes received (the FHIR facade's
 * OperationOutcome). Replaces Fastify's default, which answers `{"error":"Bad Request","message":"Client
 * Error"}` as plain JSON.
 */
export function clientErrorHandler(render: (problem: ProblemBody, path: string) => { contentType: string; body: unknown } = (problem) => ({ contentType: PROBLEM_CONTENT_TYPE, body: problem })) {
  return (err: { code?: string; rawPacket?: unknown }, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const code = status === 408 ? 'request-timeout' : status === 431 ? 'headers-too-large' : 'malformed-request';
    const detail =
      status === 408
        ? 'The request did not arrive in time.'
        : status === 431
          ? 'The request headers are larger than this service accepts.'
          : 'The request line or a header is malformed (RFC 9112): a control character, a byte that is not ASCII, or a broken header.';
    const problem: ProblemBody = { type: problemType(code), title: titleFor(status), status, detail, instance: '', code };
    // The path as far as it arrived: the second word of the request line (never echoed or logged).
    const path = Buffer.isBuffer(err.rawPacket) ? (err.rawPacket.toString('latin1').split(' ', 2)[1] ?? '') : '';
    const { contentType, body } = render(problem, path);
    const text = JSON.stringify(body);
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    }
    socket.destroy();
  };
}
