/**
 * The trace context a consumer continues for an event: the Kafka record's `traceparent` header (the
 * relay's publish span) when the event came from Kafka, else the one stored with the event
 * (metadata.traceparent, the command that wrote it). See docs/tracing.md.
 */
import type { Context } from '@opentelemetry/api';
import type { IHeaders } from 'kafkajs';
import { contextFromTraceparent, eventTraceContext, type PublicEvent } from '@token-ledger/envelope';

/** W3C trace context header (the relay writes it; consumers and the verifier read it). */
export const HEADER_TRACEPARENT = 'traceparent';

const fromRecord = new WeakMap<PublicEvent, Context>();

/** The `traceparent` header of a Kafka record, as text. */
export function traceparentHeader(headers: IHeaders | undefined): string | undefined {
  const raw = headers?.[HEADER_TRACEPARENT];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined ? undefined : value.toString();
}

/** Notes the context of the record an event was decoded from (nothing when it has none). */
export function rememberRecordContext(event: PublicEvent, headers: IHeaders | undefined): void {
  const ctx = contextFromTraceparent(traceparentHeader(headers));
  if (ctx) fromRecord.set(event, ctx);
}

/** The context a consumer continues for an event: its record's header, else its stored traceparent. */
export function eventContext(event: PublicEvent): Context | undefined {
  return fromRecord.get(event) ?? eventTraceContext(event.metadata);
}
