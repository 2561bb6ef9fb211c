import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A new signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * The three Standard Webhooks headers for one attempt: `webhook-id` (the event id, the same on every retry),
 * `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
 * "{id}.{timestamp}.{body}">` for each secret, space-separated (during a rotation the old secret signs too, so
 * a receiver that still has it keeps verifying). Signed by the `standardwebhooks` library, the one receivers use.
 */
export function signedHeaders(eventId: string, at: Date, body: string, secrets: string[]): Record<string, string> {
  const seconds = new Date(Math.floor(at.getTime() / 1000) * 1000);
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(seconds.getTime() / 1000),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(eventId, seconds, body)).join(' '),
  };
}
