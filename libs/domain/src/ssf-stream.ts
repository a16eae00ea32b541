import { canonicalJson } from './canonical-json';
import { encodeCrockford32 } from './encoding';
import { DomainError } from './errors';
import {
  SSF_EVENTS_SUPPORTED,
  SSF_POLL,
  SSF_PUSH,
  type SsfDelivery,
  type SsfStreamConfig,
  type SsfStreamEvent,
  type SsfStreamStatus,
  type SsfSubjectId,
} from './ssf-events';
import { fromIso, toIso } from './time';

/**
 * The OpenID Shared Signals stream aggregate (stream `ssf-stream-<streamId>`): a receiver's stream
 * configuration, its status, the subjects it gets events about, and its verification requests.
 * Pure: ids, time, the issuer and the policy knobs come in with each command.
 *
 * default_subjects is "NONE" (SSF 1.0 §7.1): a stream receives events only about the subjects added
 * to it, so a receiver learns nothing about users it did not ask for (least privilege).
 */

/** Stream ids: `ssf_` + 26 lower-case Crockford base32 characters (128 random bits), like key ids. */
export const SSF_STREAM_ID_PREFIX = 'ssf_';
export const SSF_STREAM_ID_PATTERN = /^ssf_[0-9a-hjkmnp-tv-z]{26}$/;
export const SSF_STREAM_ID_RANDOM_BYTES = 16;

export function isSsfStreamId(s: unknown): s is string {
  return typeof s === 'string' && SSF_STREAM_ID_PATTERN.test(s);
}

/** The caller supplies the random bytes: the domain has no source of randomness. */
export function formatSsfStreamId(bytes16: Buffer): string {
  if (!Buffer.isBuffer(bytes16) || bytes16.length !== SSF_STREAM_ID_RANDOM_BYTES) {
    throw new DomainError('invalid_argument', `an SSF stream id needs exactly ${SSF_STREAM_ID_RANDOM_BYTES} random bytes`);
  }
  return SSF_STREAM_ID_PREFIX + encodeCrockford32(bytes16, 26);
}

/** Where a poll receiver fetches its SETs (RFC 8936): set by the transmitter, served by the data plane. */
export function ssfPollEndpoint(issuer: string, streamId: string): string {
  return `${issuer}/ssf/poll/${streamId}`;
}

/** The purpose a push receiver's Authorization header is sealed under (LedgerSecrets.sealField). */
export const SSF_AUTHORIZATION_PURPOSE = 'ssf:push-authorization';

/** Bounds that keep a stream's state (snapshotted on every append) and its events small. */
export const SSF_LIMITS = {
  aud: 16,
  audLength: 512,
  eventsRequested: 32,
  uriLength: 512,
  description: 1024,
  endpointUrl: 2048,
  authorizationHeader: 4096,
  reason: 1024,
  state: 1024,
  subjects: 1000,
  subjectMember: 512,
} as const;

export interface SsfSubjectEntry {
  subjectId: SsfSubjectId;
  verified: boolean;
}

export interface SsfStreamState {
  v: 1;
  streamId: string;
  /** 'none' before SsfStreamCreated; 'deleted' after SsfStreamDeleted (then every command is not found). */
  lifecycle: 'none' | 'live' | 'deleted';
  config: SsfStreamConfig | null;
  status: SsfStreamStatus;
  statusReason: string | null;
  /** By ssfSubjectIdKey: adding the same subject twice is one entry. */
  subjects: Record<string, SsfSubjectEntry>;
  createdAt: number;
  updatedAt: number;
  /** Epoch ms of the last accepted verification request; null = none yet. */
  lastVerificationAt: number | null;
}

export function initialSsfStreamState(streamId: string): SsfStreamState {
  return { v: 1, streamId, lifecycle: 'none', config: null, status: 'enabled', statusReason: null, subjects: {}, createdAt: 0, updatedAt: 0, lastVerificationAt: null };
}

/**
 * What the transmitter's configuration decides for every command: its issuer (iss, poll URL,
 * iss_sub subjects), whether plain-http push endpoints are allowed (tests only: see docs/ssf.md,
 * SSRF), and the minimum interval between verification requests.
 */
export interface SsfPolicy {
  issuer: string;
  allowInsecurePush: boolean;
  minVerificationIntervalMs: number;
}

/**
 * The receiver-supplied part of a configuration as a request gives it (already camelCase).
 * `authorizationHeaderSealed`: the sealed header (sealed by the caller, which alone holds the key);
 * null = none; undefined = none on create and replace, unchanged on a partial update of a push stream.
 */
export interface SsfConfigInput {
  aud?: unknown;
  eventsRequested?: unknown;
  delivery?: { method?: unknown; endpointUrl?: unknown; authorizationHeaderSealed?: string | null };
  description?: unknown;
}

export type SsfStreamCommand =
  | { type: 'CreateSsfStream'; streamId: string; input: SsfConfigInput; policy: SsfPolicy; now: number }
  /** `replace` (PUT): every receiver-supplied member is set from the input; `patch`: only those present. */
  | { type: 'UpdateSsfStream'; streamId: string; mode: 'patch' | 'replace'; input: SsfConfigInput; policy: SsfPolicy; now: number }
  | { type: 'ChangeSsfStreamStatus'; streamId: string; status: unknown; reason?: unknown; now: number }
  | { type: 'AddSsfSubject'; streamId: string; subject: unknown; verified?: unknown; policy: SsfPolicy; now: number }
  | { type: 'RemoveSsfSubject'; streamId: string; subject: unknown; policy: SsfPolicy; now: number }
  | { type: 'RequestSsfVerification'; streamId: string; state?: unknown; policy: SsfPolicy; now: number }
  | { type: 'DeleteSsfStream'; streamId: string; now: number };

/** A verification asked for within min_verification_interval of the last one (SSF 1.0: 429). */
export class SsfVerificationTooSoon extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super('ssf_verification_too_soon', `a verification was requested less than min_verification_interval ago; retry in ${retryAfterSeconds} s`);
  }
}

export const SSF_STATUSES: readonly SsfStreamStatus[] = ['enabled', 'paused', 'disabled'];

/** A stable key for a subject identifier: the same subject added twice is one entry. */
export function ssfSubjectIdKey(subjectId: SsfSubjectId): string {
  switch (subjectId.format) {
    case 'iss_sub':
      return JSON.stringify(['iss_sub', subjectId.iss, subjectId.sub]);
    case 'email':
      // Matched case-insensitively by the data plane (ssfSubjectKey), so one entry whatever the case.
      return JSON.stringify(['email', subjectId.email.toLowerCase()]);
    case 'opaque':
      return JSON.stringify(['opaque', subjectId.id]);
  }
}

/** A subject identifier (RFC 9493) in a format this transmitter understands, or the problems with it. */
export function parseSsfSubjectId(raw: unknown, issuer: string): { ok: true; value: SsfSubjectId } | { ok: false; errors: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, errors: ['subject must be an object with a format (iss_sub, email or opaque)'] };
  const r = raw as Record<string, unknown>;
  const str = (name: string): string | undefined => {
    const v = r[name];
    return typeof v === 'string' && v.length > 0 && v.length <= SSF_LIMITS.subjectMember ? v : undefined;
  };
  const members = (allowed: string[]) => Object.keys(r).filter((k) => k !== 'format' && !allowed.includes(k));
  const bad = (msg: string) => ({ ok: false as const, errors: [msg] });
  switch (r.format) {
    case 'iss_sub': {
      const iss = str('iss');
      const sub = str('sub');
      if (!iss || !sub) return bad(`an iss_sub subject needs iss and sub (non-empty strings of at most ${SSF_LIMITS.subjectMember} characters)`);
      // Subjects of another issuer never match anything this ledger sends: refused, not silently kept.
      if (iss !== issuer) return bad(`subject.iss must be this transmitter's issuer ${issuer}`);
      if (members(['iss', 'sub']).length > 0) return bad(`unknown members in an iss_sub subject: ${members(['iss', 'sub']).join(', ')}`);
      return { ok: true, value: { format: 'iss_sub', iss, sub } };
    }
    case 'email': {
      const email = str('email');
      if (!email || !/^[^\s@]+@[^\s@]+$/.test(email)) return bad('an email subject needs an e-mail address in email');
      if (members(['email']).length > 0) return bad(`unknown members in an email subject: ${members(['email']).join(', ')}`);
      return { ok: true, value: { format: 'email', email } };
    }
    case 'opaque': {
      const id = str('id');
      if (!id) return bad(`an opaque subject needs id (a non-empty string of at most ${SSF_LIMITS.subjectMember} characters)`);
      if (members(['id']).length > 0) return bad(`unknown members in an opaque subject: ${members(['id']).join(', ')}`);
      return { ok: true, value: { format: 'opaque', id } };
    }
    default:
      return bad(`subject format ${JSON.stringify(r.format)} is not supported; supported: iss_sub, email, opaque`);
  }
}

/** An Authorization header value a push receiver wants on every request, or its problems (checked before sealing). */
export function ssfAuthorizationHeaderProblems(value: unknown): string[] {
  if (typeof value !== 'string' || value.length === 0 || value.length > SSF_LIMITS.authorizationHeader || !/^[\x20-\x7e]+$/.test(value)) {
    return [`delivery.authorization_header must be 1 to ${SSF_LIMITS.authorizationHeader} printable ASCII characters`];
  }
  return [];
}

/** An absolute URI (events_requested members are event-type URIs). */
function isUri(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > SSF_LIMITS.uriLength || /\s/.test(s)) return false;
  return /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s);
}

const IPV4_LITERAL = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * A push endpoint (RFC 8935): an absolute https URL without credentials or fragment. The ledger
 * POSTs to it, so whoever creates a stream chooses where the ledger sends requests (SSRF): plain
 * http and IP-literal hosts (loopback, the cloud metadata address, internal services) are refused
 * unless the operator allows them (LEDGER_SSF_ALLOW_INSECURE_PUSH, for tests and local setups).
 */
function pushEndpointProblems(raw: unknown, allowInsecure: boolean): string[] {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > SSF_LIMITS.endpointUrl) {
    return [`delivery.endpoint_url is required for push: an https URL of at most ${SSF_LIMITS.endpointUrl} characters`];
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return ['delivery.endpoint_url must be an absolute URL'];
  }
  const problems: string[] = [];
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) problems.push('delivery.endpoint_url must use https');
  if (url.username || url.password) problems.push('delivery.endpoint_url must not carry credentials (use delivery.authorization_header)');
  if (url.hash) problems.push('delivery.endpoint_url must not have a fragment');
  const host = url.hostname.toLowerCase();
  if (!allowInsecure && (IPV4_LITERAL.test(host) || host.startsWith('[') || host === 'localhost' || host.endsWith('.localhost'))) {
    problems.push('delivery.endpoint_url must name its host by a public DNS name, not an IP address or localhost');
  }
  return problems;
}

/** The whole receiver-supplied configuration, validated; every problem at once. */
function buildConfig(streamId: string, input: SsfConfigInput, policy: SsfPolicy, previous: SsfStreamConfig | null): SsfStreamConfig {
  const errors: string[] = [];
  const aud = typeof input.aud === 'string' ? [input.aud] : input.aud;
  if (!Array.isArray(aud) || aud.length === 0 || aud.length > SSF_LIMITS.aud || !aud.every((a) => typeof a === 'string' && a.length > 0 && a.length <= SSF_LIMITS.audLength)) {
    errors.push(`aud must be a non-empty string or a list of 1 to ${SSF_LIMITS.aud} non-empty strings`);
  }
  const requested = input.eventsRequested;
  if (!Array.isArray(requested) || requested.length > SSF_LIMITS.eventsRequested || !requested.every(isUri)) {
    errors.push(`events_requested must be a list of at most ${SSF_LIMITS.eventsRequested} event-type URIs`);
  }
  const description = input.description ?? null;
  if (description !== null && (typeof description !== 'string' || description.length > SSF_LIMITS.description)) {
    errors.push(`description must be a string of at most ${SSF_LIMITS.description} characters`);
  }
  let delivery: SsfDelivery | undefined;
  const d = input.delivery;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) {
    errors.push(`delivery must be an object with method ${SSF_PUSH} (push) or ${SSF_POLL} (poll)`);
  } else if (d.method === SSF_PUSH) {
    const problems = pushEndpointProblems(d.endpointUrl, policy.allowInsecurePush);
    errors.push(...problems);
    if (problems.length === 0) {
      // undefined keeps the sealed header of a push stream being patched: GET never shows it, so a
      // read-modify-write would otherwise drop it without the receiver noticing. Only for the same
      // origin, so moving the endpoint elsewhere never sends the old receiver's credential there.
      const keep = previous?.delivery.method === SSF_PUSH && new URL(previous.delivery.endpointUrl).origin === new URL(d.endpointUrl as string).origin;
      const sealed = d.authorizationHeaderSealed === undefined ? (keep && previous?.delivery.method === SSF_PUSH ? previous.delivery.authorizationHeaderSealed : undefined) : d.authorizationHeaderSealed;
      delivery = { method: SSF_PUSH, endpointUrl: d.endpointUrl as string, ...(sealed ? { authorizationHeaderSealed: sealed } : {}) };
    }
  } else if (d.method === SSF_POLL) {
    // The transmitter sets a poll stream's endpoint itself (SSF 1.0 §8.1.1): what the receiver sent is ignored.
    delivery = { method: SSF_POLL, endpointUrl: ssfPollEndpoint(policy.issuer, streamId) };
  } else {
    errors.push(`delivery.method must be ${SSF_PUSH} (push) or ${SSF_POLL} (poll)`);
  }
  if (errors.length > 0) throw new DomainError('invalid_argument', errors.join('; '));
  const eventsRequested = [...new Set(requested as string[])];
  return {
    aud: [...new Set(aud as string[])],
    eventsRequested,
    eventsDelivered: eventsRequested.filter((e) => (SSF_EVENTS_SUPPORTED as readonly string[]).includes(e)),
    delivery: delivery!,
    description: description as string | null,
  };
}

function sameAudience(raw: unknown, aud: readonly string[]): boolean {
  const given = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(given)) return false;
  const a = new Set(given);
  return a.size === aud.length && aud.every((x) => a.has(x));
}

/** Key order aside: a state read back from a stored snapshot (jsonb) has its keys reordered. */
function sameConfig(a: SsfStreamConfig, b: SsfStreamConfig): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function checkPolicy(policy: SsfPolicy): void {
  if (!policy || typeof policy.issuer !== 'string' || !Number.isSafeInteger(policy.minVerificationIntervalMs) || policy.minVerificationIntervalMs < 0) {
    throw new DomainError('invalid_argument', 'a transmitter policy (issuer, minVerificationIntervalMs) is required');
  }
}

/**
 * Create once ('ssf_stream_exists' otherwise); every other command needs a live stream
 * ('ssf_stream_not_found' before creation and after deletion, which is final). Commands that change
 * nothing (same configuration, same status, a subject already added) decide no event.
 */
export function decideSsfStream(command: SsfStreamCommand, state: SsfStreamState): SsfStreamEvent[] {
  if (!isSsfStreamId(command.streamId)) throw new DomainError('ssf_stream_not_found', `no SSF stream ${String(command.streamId)}`);
  if (state.lifecycle !== 'none' && state.streamId !== command.streamId) throw new DomainError('invalid_argument', 'command and state are for different streams');
  if (!Number.isSafeInteger(command.now) || command.now < 0) throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  if ('policy' in command) checkPolicy(command.policy);
  const header = { familyId: '' as const, subject: '' as const, clientId: '' as const, occurredAt: toIso(command.now) };
  const streamId = command.streamId;
  if (command.type === 'CreateSsfStream') {
    if (state.lifecycle !== 'none') throw new DomainError('ssf_stream_exists', `SSF stream ${streamId} already exists`);
    const config = buildConfig(streamId, command.input, command.policy, null);
    return [{ type: 'SsfStreamCreated', ...header, data: { ...config, streamId, status: 'enabled' } }];
  }
  if (state.lifecycle !== 'live' || state.config === null) throw new DomainError('ssf_stream_not_found', `no SSF stream ${streamId}`);
  const current = state.config;
  switch (command.type) {
    case 'UpdateSsfStream': {
      const input = command.input;
      // aud is set when the stream is created and "cannot be updated" (SSF 1.0 §8.1.1): it may be sent
      // back as read, but a different one is refused rather than silently ignored.
      if (input.aud !== undefined && !sameAudience(input.aud, current.aud)) {
        throw new DomainError('invalid_argument', 'aud cannot be updated: it is fixed when the stream is created');
      }
      const merged: SsfConfigInput =
        command.mode === 'replace'
          ? // PUT: a receiver-supplied member left out is "requested to be deleted" (SSF 1.0 §8.1.1.4);
            // delivery cannot be, so without it the request is refused.
            { aud: current.aud, eventsRequested: input.eventsRequested ?? [], delivery: input.delivery, description: input.description ?? null }
          : {
              aud: current.aud,
              eventsRequested: input.eventsRequested !== undefined ? input.eventsRequested : current.eventsRequested,
              delivery: input.delivery !== undefined ? input.delivery : { ...current.delivery, authorizationHeaderSealed: undefined },
              description: input.description !== undefined ? input.description : current.description,
            };
      const next = buildConfig(streamId, merged, command.policy, command.mode === 'patch' ? current : null);
      if (sameConfig(next, current)) return [];
      return [{ type: 'SsfStreamUpdated', ...header, data: { ...next, streamId } }];
    }
    case 'ChangeSsfStreamStatus': {
      if (!SSF_STATUSES.includes(command.status as SsfStreamStatus)) throw new DomainError('invalid_argument', `status must be one of ${SSF_STATUSES.join(', ')}`);
      const reason = command.reason ?? null;
      if (reason !== null && (typeof reason !== 'string' || reason.length > SSF_LIMITS.reason)) throw new DomainError('invalid_argument', `reason must be a string of at most ${SSF_LIMITS.reason} characters`);
      if (state.status === command.status && state.statusReason === reason) return [];
      return [{ type: 'SsfStreamStatusChanged', ...header, data: { streamId, status: command.status as SsfStreamStatus, reason: reason as string | null } }];
    }
    case 'AddSsfSubject': {
      const parsed = parseSsfSubjectId(command.subject, command.policy.issuer);
      if (!parsed.ok) throw new DomainError('invalid_argument', parsed.errors.join('; '));
      const verified = command.verified ?? true; // SSF 1.0 §8.1.3.1: omitted = verified
      if (typeof verified !== 'boolean') throw new DomainError('invalid_argument', 'verified must be a boolean');
      const existing = state.subjects[ssfSubjectIdKey(parsed.value)];
      if (existing && existing.verified === verified) return [];
      if (!existing && Object.keys(state.subjects).length >= SSF_LIMITS.subjects) {
        throw new DomainError('ssf_too_many_subjects', `a stream holds at most ${SSF_LIMITS.subjects} subjects`);
      }
      return [{ type: 'SsfSubjectAdded', ...header, data: { streamId, subjectId: parsed.value, verified } }];
    }
    case 'RemoveSsfSubject': {
      const parsed = parseSsfSubjectId(command.subject, command.policy.issuer);
      if (!parsed.ok) throw new DomainError('invalid_argument', parsed.errors.join('; '));
      const existing = state.subjects[ssfSubjectIdKey(parsed.value)];
      // SSF 1.0 §8.1.3.3: 404 when the subject is not recognised.
      if (!existing) throw new DomainError('ssf_subject_not_found', 'the subject is not in this stream');
      return [{ type: 'SsfSubjectRemoved', ...header, data: { streamId, subjectId: existing.subjectId } }];
    }
    case 'RequestSsfVerification': {
      const verifyState = command.state ?? null;
      if (verifyState !== null && (typeof verifyState !== 'string' || verifyState.length > SSF_LIMITS.state)) {
        throw new DomainError('invalid_argument', `state must be a string of at most ${SSF_LIMITS.state} characters`);
      }
      const last = state.lastVerificationAt;
      const wait = last === null ? 0 : last + command.policy.minVerificationIntervalMs - command.now;
      if (wait > 0) throw new SsfVerificationTooSoon(Math.ceil(wait / 1000));
      return [{ type: 'SsfVerificationRequested', ...header, data: { streamId, state: verifyState as string | null } }];
    }
    case 'DeleteSsfStream':
      return [{ type: 'SsfStreamDeleted', ...header, data: { streamId } }];
  }
}

export function evolveSsfStream(state: SsfStreamState, event: SsfStreamEvent): SsfStreamState {
  const at = fromIso(event.occurredAt);
  switch (event.type) {
    case 'SsfStreamCreated': {
      const { streamId, status, ...config } = event.data;
      return { ...state, streamId, lifecycle: 'live', config, status, statusReason: null, createdAt: at, updatedAt: at };
    }
    case 'SsfStreamUpdated': {
      const { streamId: _id, ...config } = event.data;
      return { ...state, config, updatedAt: at };
    }
    case 'SsfStreamStatusChanged':
      return { ...state, status: event.data.status, statusReason: event.data.reason, updatedAt: at };
    case 'SsfSubjectAdded':
      return { ...state, subjects: { ...state.subjects, [ssfSubjectIdKey(event.data.subjectId)]: { subjectId: event.data.subjectId, verified: event.data.verified } } };
    case 'SsfSubjectRemoved': {
      const { [ssfSubjectIdKey(event.data.subjectId)]: _removed, ...subjects } = state.subjects;
      return { ...state, subjects };
    }
    case 'SsfVerificationRequested':
      return { ...state, lastVerificationAt: at };
    case 'SsfStreamDeleted':
      // Configuration and subjects are dropped from the state: nothing may be sent any more.
      return { ...state, lifecycle: 'deleted', config: null, subjects: {}, updatedAt: at };
    default:
      return state;
  }
}
