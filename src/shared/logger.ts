import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * An error as it may be logged: no query parameters (drizzle puts them in its message: they hold patient
 * names and MRNs), no PostgreSQL `detail` (unique violations quote the conflicting values). The SQL text
 * itself is parameterized and stays, as do codes and the stack's frames.
 */
export function loggableError(err: unknown, depth = 0): Record<string, unknown> | undefined {
  if (!err || typeof err !== 'object' || depth > 3) return undefined;
  const e = err as { name?: string; message?: unknown; code?: unknown; stack?: unknown; cause?: unknown; constraint?: unknown; routine?: unknown };
  const withheld = (s: string) => s.replace(/\nparams: [\s\S]*?(?=\n {4}at |$)/, '\nparams: [withheld]');
  const message = typeof e.message === 'string' ? withheld(e.message) : undefined;
  return {
    type: e.name ?? 'Error',
    message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.constraint === 'string' ? { constraint: e.constraint } : {}),
    ...(typeof e.routine === 'string' ? { routine: e.routine } : {}),
    ...(typeof e.stack === 'string' ? { stack: withheld(e.stack) } : {}),
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
