/**
 * The event types the feed and webhooks carry (contract "Events and webhooks"), named `<resource>.<what happened>`.
 * `lot.safety-signal` is emitted by the safety monitor (modules/safety) when a lot is first flagged; the others by the change they name.
 */
export const EVENT_TYPES = [
  'lot.released',
  'lot.quarantined',
  'lot.recalled',
  'lot.safety-signal',
  'recall-notice.created',
  'recall-notice.acknowledged',
  'donor.ineligible',
  'shipment.created',
  'procedure.created',
  'procedure.entered-in-error',
  'outcome.created',
  'adverse-event.created',
  'adverse-event.updated',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
