import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Connection-level driver messages: fixed texts that name no value, worth keeping for an operator.
 * Every other message is withheld (see loggableError).
 */
const FIXED_MESSAGES =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|Cannot use a pool after calling end on the pool|terminating connection due to administrator command|the database system is (starting up|shutting down)|connect ECONNREFUSED [\d.:]+)$/;

/**
 * An error as it may be logged (contract: "Logs"): its class, SQLSTATE, constraint and the other names
 * PostgreSQL reports (table, column, type, routine), the parameterized SQL text of a failed drizzle query, and
 * the stack's frames. Never the message text: PostgreSQL quotes the offending value (`invalid input syntax
 * for type date: "2023-02-30"`, a unique violation's key), drizzle appends the query's parameters, and
 * JSON.parse quotes the body. Kept only when an error says its message holds no request value
 * (`safeToLog: true`, e.g. start-up failures) or it is one of the driver's fixed connection messages.
 */
export function loggableError(err: unknown, depth = 0): Record<string, unknown> | undefined {
  if (!err || typeof err !== 'object' || depth > 3) return undefined;
  const e = err as {
    name?: string;
    message?: unknown;
    code?: unknown;
    stack?: unknown;
    cause?: unknown;
    safeToLog?: unknown;
    query?: unknown;
    params?: unknown;
  } & Record<string, unknown>;
  const names = Object.fromEntries(
    ['code', 'constraint', 'routine', 'table', 'column', 'dataType', 'schema', 'severity'].filter((k) => typeof e[k] === 'string').map((k) => [k, e[k]]),
  );
  const message = typeof e.message === 'string' && (e.safeToLog === true || FIXED_MESSAGES.test(e.message)) ? e.message : undefined;
  const frames = typeof e.stack === 'string' ? e.stack.split('\n').filter((line) => /^\s+at /.test(line)).join('\n') : undefined;
  // A drizzle query error carries its statement text (placeholders, no values) beside its params.
  const query = typeof e.query === 'string' && Array.isArray(e.params) ? e.query : undefined;
  return {
    type: e.name ?? 'Error',
    ...(message !== undefined ? { message } : {}),
    ...names,
    ...(query !== undefined ? { query } : {}),
    ...(frames ? { stack: frames } : {}),
    ...(e.cause ? { cause: loggableError(e.cause, depth + 1) } : {}),
  };
}

/**
 * The service's logger. Request lines carry only method, route pattern, status and timing (see app.ts);
 * errors go through loggableError; the redactions are a further fence if a header or body is logged by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'exosome-records' },
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'authorization', '*.authorization', 'body', '*.body', 'req.body', 'res.body', 'query', 'req.query'],
        censor: '[redacted]',
      },
      serializers: { err: (err: unknown) => loggableError(err) },
    },
    destination,
  );
}
