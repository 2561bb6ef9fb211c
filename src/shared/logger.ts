import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The service's logger. Request lines carry only method, route pattern, status and timing (see app.ts);
 * these redactions are a second fence in case a header or body is ever logged by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'exosome-records' },
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          'authorization',
          '*.authorization',
          'body',
          '*.body',
          'req.body',
          'res.body',
          'query',
          'req.query',
          'err.detail',
          'err.parameters',
          'err.where',
        ],
        censor: '[redacted]',
      },
      serializers: {
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}
