import { DomainError } from './errors';
import type { RequestContext } from './events';

/**
 * Lengths of the free-text values that reach events, logs and read models. The HTTP layer checks
 * them first (400 naming the field); the deciders enforce them again so no entry point can store more.
 */
export const MAX_SUBJECT_LENGTH = 256;
export const MAX_USER_AGENT_LENGTH = 512;
export const MAX_DEVICE_ID_LENGTH = 128;
/** The textual form of an IPv6 address with a zone id fits easily; validity is checked at the edge. */
export const MAX_IP_LENGTH = 64;

/** Throws invalid_argument for a subject that is not a non-empty string of at most MAX_SUBJECT_LENGTH. */
export function assertSubject(subject: unknown): asserts subject is string {
  if (typeof subject !== 'string' || subject === '') throw new DomainError('invalid_argument', 'subject is required');
  if (subject.length > MAX_SUBJECT_LENGTH) throw new DomainError('invalid_argument', `subject must be at most ${MAX_SUBJECT_LENGTH} characters`);
}

/** Throws invalid_argument for a context field of the wrong type or over its length. */
export function assertRequestContext(context: RequestContext | undefined): void {
  if (context === undefined) return;
  const limits: Array<[keyof RequestContext, number]> = [
    ['ip', MAX_IP_LENGTH],
    ['userAgent', MAX_USER_AGENT_LENGTH],
    ['deviceId', MAX_DEVICE_ID_LENGTH],
  ];
  for (const [field, max] of limits) {
    const value = context[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length > max) {
      throw new DomainError('invalid_argument', `context.${field} must be a string of at most ${max} characters`);
    }
  }
}
