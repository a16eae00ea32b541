/**
 * Trace context that travels with stored events, and the spans the ledger starts by hand. Only
 * @opentelemetry/api: the app starts the SDK (apps/token-ledger/src/tracing) when OTEL_* asks for
 * it; without it every call here is the API's no-op, and no event gets a `traceparent`.
 *
 * An event is relayed after it is stored, off the request, so the context of the command that
 * wrote it is kept in its metadata (`traceparent`, W3C) by toNewEvent; the relay, projections and
 * the anomaly engine continue from it, and Kafka consumers from the record's headers.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import { SUBJECT_STREAM_PREFIX } from './streams';

export const tracer = trace.getTracer('token-ledger');

/** The W3C `traceparent` of a context's span (default: the active one), or undefined (no span, or tracing off). */
export function activeTraceparent(ctx: Context = context.active()): string | undefined {
  const carrier: { traceparent?: string } = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a `traceparent` (event metadata, Kafka header) names; undefined without one. */
export function contextFromTraceparent(traceparent: unknown): Context | undefined {
  if (typeof traceparent !== 'string' || traceparent.length === 0) return undefined;
  const extracted = propagation.extract(ROOT_CONTEXT, { traceparent });
  return trace.getSpanContext(extracted) ? extracted : undefined;
}

/** The trace context stored with an event (metadata.traceparent), if any. */
export function eventTraceContext(metadata: unknown): Context | undefined {
  return contextFromTraceparent((metadata as { traceparent?: unknown } | null | undefined)?.traceparent);
}

/** Runs `work` in a new active span (ended when it settles; a throw marks it failed). */
export function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, options: { kind?: SpanKind; parent?: Context; links?: Link[] } = {}): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes, links: options.links }, parent, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** At most this many links on a batch span (a batch can hold hundreds of events). */
const MAX_LINKS = 64;

/**
 * A consumer's span over a batch of events from many requests: it continues the trace of the first
 * event that has one and links the others'. Without any trace context (tracing was off when they
 * were written) no span is started at all.
 */
export function inBatchSpan<T>(name: string, contexts: readonly (Context | undefined)[], attributes: Attributes, work: () => Promise<T>): Promise<T> {
  const traced = contexts.filter((c): c is Context => c !== undefined);
  if (traced.length === 0) return work();
  const links = traced.slice(1, MAX_LINKS + 1).map((c) => ({ context: trace.getSpanContext(c)! }));
  return inSpan(name, { 'messaging.batch.message_count': contexts.length, ...attributes }, () => work(), { kind: SpanKind.CONSUMER, parent: traced[0], links });
}

/**
 * `eventstore.append`: the one span around a chained append (AggregateRepository, appendChained).
 * A subject stream's name is the subject in clear (a user id): traces get its category only, as the
 * revocation feed publishes a keyed hash, never the subject.
 */
export function inAppendSpan<T>(streamId: string, eventCount: number, append: () => Promise<T>): Promise<T> {
  const category = streamId.slice(0, streamId.indexOf('-'));
  const stream = streamId.startsWith(SUBJECT_STREAM_PREFIX) ? {} : { 'eventstore.stream': streamId };
  return inSpan('eventstore.append', { 'eventstore.stream_category': category, ...stream, 'eventstore.event_count': eventCount }, () => append());
}
