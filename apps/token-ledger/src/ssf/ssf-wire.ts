import { SSF_EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH, type SsfStreamState } from '@token-ledger/domain';
import type { SsfConfigRequest } from '../ledger/commands/ssf-stream.command';
import { ProblemError } from '../http/problem';

/**
 * The SSF 1.0 wire shapes (§7, §8: snake_case) of the stream aggregate, and request bodies read
 * into the command side's camelCase. The push Authorization header is read here and never written.
 */

export interface SsfStreamConfigWire {
  stream_id: string;
  iss: string;
  aud: string | string[];
  events_supported: string[];
  events_requested: string[];
  events_delivered: string[];
  delivery: { method: string; endpoint_url: string };
  min_verification_interval: number;
  description?: string;
}

export interface SsfStatusWire {
  stream_id: string;
  status: string;
  reason?: string;
}

/** A live stream's configuration as SSF shows it: never the push receiver's authorization_header. */
export function toWireConfig(state: SsfStreamState, issuer: string, minVerificationIntervalSeconds: number): SsfStreamConfigWire {
  const config = state.config!;
  return {
    stream_id: state.streamId,
    iss: issuer,
    // One audience is shown as a string (as a JWT aud usually is), several as a list.
    aud: config.aud.length === 1 ? config.aud[0] : config.aud,
    events_supported: [...SSF_EVENTS_SUPPORTED],
    events_requested: config.eventsRequested,
    events_delivered: config.eventsDelivered,
    delivery: { method: config.delivery.method, endpoint_url: config.delivery.endpointUrl },
    min_verification_interval: minVerificationIntervalSeconds,
    ...(config.description === null ? {} : { description: config.description }),
  };
}

export function toWireStatus(state: SsfStreamState): SsfStatusWire {
  return { stream_id: state.streamId, status: state.status, ...(state.statusReason === null ? {} : { reason: state.statusReason }) };
}

/** Receiver-supplied members (SSF 1.0 §8.1.1), the only ones a request can set. */
const RECEIVER_MEMBERS = ['aud', 'events_requested', 'delivery', 'description'];
/**
 * Transmitter-supplied members a receiver may send back (a read-modify-write): they change nothing,
 * but must match what the transmitter says (SSF 1.0 §8.1.1.3: else 400). events_delivered follows
 * from events_requested, so it is not compared.
 */
const TRANSMITTER_MEMBERS = ['stream_id', 'iss', 'events_supported', 'events_delivered', 'min_verification_interval'];

/** What the transmitter-supplied members must be. */
export interface TransmitterValues {
  iss: string;
  minVerificationInterval: number;
}
const DELIVERY_MEMBERS = ['method', 'endpoint_url', 'authorization_header'];

export function badRequest(errors: string[]): ProblemError {
  return new ProblemError(400, 'Invalid request', errors.join('; '), { errors });
}

export function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest(['the body must be a JSON object']);
  return body as Record<string, unknown>;
}

/** stream_id of a body or query: a string, else 400 (a string that names no stream is a 404 later). */
export function requireStreamId(value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 64) throw badRequest(['stream_id is required']);
  return value;
}

/** A stream configuration body: unknown members are refused (a typo would otherwise be silently ignored). */
export function readConfigBody(body: unknown, expected: TransmitterValues): { streamId: unknown; input: SsfConfigRequest } {
  const b = requireObject(body);
  const unknown = Object.keys(b).filter((k) => !RECEIVER_MEMBERS.includes(k) && !TRANSMITTER_MEMBERS.includes(k));
  const errors = unknown.length > 0 ? [`unknown stream configuration members: ${unknown.join(', ')}`] : [];
  if (b.iss !== undefined && b.iss !== expected.iss) errors.push(`iss is set by the transmitter: ${expected.iss}`);
  if (b.min_verification_interval !== undefined && b.min_verification_interval !== expected.minVerificationInterval) {
    errors.push(`min_verification_interval is set by the transmitter: ${expected.minVerificationInterval}`);
  }
  if (b.events_supported !== undefined) {
    const given = Array.isArray(b.events_supported) ? new Set(b.events_supported) : null;
    if (!given || given.size !== SSF_EVENTS_SUPPORTED.length || !SSF_EVENTS_SUPPORTED.every((e) => given.has(e))) {
      errors.push('events_supported is set by the transmitter; send it back as read, or leave it out');
    }
  }
  let delivery: SsfConfigRequest['delivery'];
  if (b.delivery !== undefined) {
    if (typeof b.delivery !== 'object' || b.delivery === null || Array.isArray(b.delivery)) {
      errors.push(`delivery must be an object with method ${SSF_PUSH} (push) or ${SSF_POLL} (poll)`);
    } else {
      const d = b.delivery as Record<string, unknown>;
      const unknownDelivery = Object.keys(d).filter((k) => !DELIVERY_MEMBERS.includes(k));
      if (unknownDelivery.length > 0) errors.push(`unknown delivery members: ${unknownDelivery.join(', ')}`);
      delivery = { method: d.method, endpointUrl: d.endpoint_url, authorizationHeader: d.authorization_header };
    }
  }
  if (errors.length > 0) throw badRequest(errors);
  return { streamId: b.stream_id, input: { aud: b.aud, eventsRequested: b.events_requested, delivery, description: b.description } };
}

/** A body of exactly these members (and stream_id), else 400 naming the others. */
export function readBody(body: unknown, members: string[]): Record<string, unknown> {
  const b = requireObject(body);
  const unknown = Object.keys(b).filter((k) => k !== 'stream_id' && !members.includes(k));
  if (unknown.length > 0) throw badRequest([`unknown members: ${unknown.join(', ')}`]);
  return b;
}
