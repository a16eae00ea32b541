import { BadRequestException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { SigningUnavailableError } from '@token-ledger/crypto';
import { DomainError } from '@token-ledger/domain';
import { EventStoreClosedError } from '@token-ledger/event-store';
import { ConcurrencyExhaustedError } from '../ledger/aggregate-repository';
import { LedgerError, type LedgerErrorKind } from '../ledger/ledger-error';
import { OAuthError } from '../oauth/oauth-error';
import { sendError } from './exception.filter';
import { ProblemError } from './problem';

interface Answer {
  status: number;
  type: string;
  headers: Record<string, string>;
  body: unknown;
  logged: string[];
}

/** Runs the filter's mapping on a recording reply. */
function answer(url: string, exception: unknown): Answer {
  const out: Answer = { status: 0, type: '', headers: {}, body: undefined, logged: [] };
  const reply = {
    header(name: string, value: string) {
      out.headers[name] = value;
      return reply;
    },
    status(code: number) {
      out.status = code;
      return reply;
    },
    type(type: string) {
      out.type = type;
      return reply;
    },
    send(body: unknown) {
      out.body = body;
      return reply;
    },
  };
  sendError(reply as unknown as FastifyReply, url, exception, { error: (m: string) => out.logged.push(m) });
  return out;
}

const OAUTH = '/oauth/token';
const ADMIN = '/v1/families';

describe('exception filter: LedgerError kinds', () => {
  it.each<[LedgerErrorKind, number, string]>([
    ['invalid_request', 400, 'invalid_request'],
    ['invalid_grant', 400, 'invalid_grant'],
    ['invalid_scope', 400, 'invalid_scope'],
    ['invalid_client', 401, 'invalid_client'],
    ['unauthorized_client', 400, 'unauthorized_client'],
    ['not_found', 400, 'invalid_request'],
    ['conflict', 400, 'invalid_request'],
    ['unavailable', 503, 'temporarily_unavailable'],
    ['rate_limited', 429, 'temporarily_unavailable'],
  ])('%s under /oauth is %i %s (RFC 6749 §5.2)', (kind, status, error) => {
    const a = answer(OAUTH, new LedgerError(kind, 'what happened', { title: 'Ignored here', members: { extra: 1 } }));
    expect(a.status).toBe(status);
    expect(a.type).toBe('application/json');
    expect(a.body).toEqual({ error, error_description: 'what happened' });
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.headers.pragma).toBe('no-cache');
    expect(a.headers['www-authenticate']).toBe(status === 401 ? 'Basic realm="token-ledger", charset="UTF-8"' : undefined);
    expect(a.headers['retry-after']).toBe(kind === 'unavailable' || kind === 'rate_limited' ? '1' : undefined);
    expect(a.logged).toHaveLength(status >= 500 ? 1 : 0);
  });

  it.each<[LedgerErrorKind, number, string]>([
    ['invalid_request', 400, 'Bad Request'],
    ['invalid_grant', 400, 'Bad Request'],
    ['invalid_scope', 400, 'Bad Request'],
    ['invalid_client', 400, 'Bad Request'],
    ['unauthorized_client', 403, 'Forbidden'],
    ['not_found', 404, 'Not Found'],
    ['conflict', 409, 'Conflict'],
    ['unavailable', 503, 'Service Unavailable'],
    ['rate_limited', 429, 'Too Many Requests'],
  ])('%s elsewhere is %i %s (RFC 9457)', (kind, status, title) => {
    const a = answer(ADMIN, new LedgerError(kind, 'what happened'));
    expect(a.status).toBe(status);
    expect(a.type).toBe('application/problem+json');
    expect(a.body).toEqual({ type: 'about:blank', title, status, detail: 'what happened' });
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.headers.pragma).toBeUndefined();
    expect(a.headers['www-authenticate']).toBeUndefined();
    expect(a.headers['retry-after']).toBe(kind === 'unavailable' || kind === 'rate_limited' ? '1' : undefined);
  });

  it('keeps a title and public members of its own on the admin API', () => {
    const registration = new LedgerError('invalid_request', 'a; b', { title: 'Invalid client registration', members: { errors: ['a', 'b'] } });
    expect(answer('/v1/clients', registration).body).toEqual({ type: 'about:blank', title: 'Invalid client registration', status: 400, detail: 'a; b', errors: ['a', 'b'] });
    const lagging = new LedgerError('unavailable', 'read models have not reached position 9 yet', { members: { position: 7 } });
    const a = answer('/v1/families/fam_x', lagging);
    expect(a).toMatchObject({ status: 503, body: { title: 'Service Unavailable', position: 7 }, headers: { 'retry-after': '1' } });
  });
});

describe('exception filter: failures that are not LedgerErrors', () => {
  it('maps DomainError by its code; an unknown code stays a fault', () => {
    const exists = new DomainError('client_exists', 'client web is already registered');
    expect(answer('/v1/clients', exists)).toMatchObject({
      status: 409,
      body: { type: 'about:blank', title: 'Conflict', status: 409, detail: 'client web is already registered' },
      logged: [],
    });
    expect(answer(ADMIN, new DomainError('family_exists', 'family fam_x already exists'))).toMatchObject({ status: 409 });
    for (const code of ['invalid_argument', 'missing_subject', 'subject_mismatch']) {
      expect(answer(ADMIN, new DomainError(code, 'no'))).toMatchObject({ status: 400, body: { title: 'Bad Request', detail: 'no' } });
      expect(answer(OAUTH, new DomainError(code, 'no'))).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'no' } });
    }
    const unknown = answer(ADMIN, new DomainError('something_new', 'internal detail'));
    expect(unknown).toMatchObject({ status: 500, body: { type: 'about:blank', title: 'Internal Server Error', status: 500 } });
    expect(unknown.logged).toHaveLength(1);
  });

  it('answers ConcurrencyExhaustedError with 503 and Retry-After, without naming the stream', () => {
    const error = new ConcurrencyExhaustedError('family-fam_secretish');
    const oauth = answer(OAUTH, error);
    expect(oauth).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { error: 'temporarily_unavailable' } });
    expect(JSON.stringify(oauth.body)).not.toContain('fam_');
    expect(answer(ADMIN, error)).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { title: 'Service Unavailable' } });
    expect(oauth.logged).toHaveLength(1);
  });

  it('answers a signing thread that died under the request (SigningUnavailableError) with 503 and Retry-After', () => {
    const error = new SigningUnavailableError('exited with code 1');
    expect(answer(OAUTH, error)).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { error: 'temporarily_unavailable' } });
    expect(answer(ADMIN, error)).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { title: 'Service Unavailable' } });
  });

  it.each<[string, unknown]>([
    ['a closed store', new EventStoreClosedError()],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a server shutting down (57P01)', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
    ['a lost connection', new Error('Connection terminated unexpectedly')],
  ])('answers %s with 503 and Retry-After on both APIs, never with the driver message', (_name, error) => {
    const oauth = answer(OAUTH, error);
    expect(oauth.status).toBe(503);
    expect(oauth.headers['retry-after']).toBe('5');
    expect(oauth.body).toEqual({ error: 'temporarily_unavailable', error_description: 'the ledger cannot reach its store; try again later' });
    const admin = answer(ADMIN, error);
    expect(admin.status).toBe(503);
    expect(admin.headers['retry-after']).toBe('5');
    expect(admin.body).toEqual({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'the ledger cannot reach its store; try again later' });
    // Operators still see what happened.
    expect(admin.logged[0]).toContain((error as Error).message);
  });

  it('leaves the HTTP layer\'s own errors and everything else as they were', () => {
    expect(answer(OAUTH, new OAuthError('invalid_client', 'client authentication failed'))).toMatchObject({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
      headers: { 'www-authenticate': 'Basic realm="token-ledger", charset="UTF-8"' },
    });
    expect(answer(ADMIN, new ProblemError(401, 'Unauthorized', 'a valid admin bearer token is required'))).toMatchObject({
      status: 401,
      body: { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'a valid admin bearer token is required' },
      headers: { 'www-authenticate': 'Bearer realm="token-ledger"' },
    });
    expect(answer(ADMIN, new BadRequestException(['a', 'b']))).toMatchObject({ status: 400, body: { title: 'Bad Request', detail: 'a; b' } });
    expect(answer(OAUTH, Object.assign(new Error('Body is too large'), { statusCode: 413 }))).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(answer('/oauth/nope', Object.assign(new Error('Not Found'), { statusCode: 404 }))).toMatchObject({ status: 400, body: { error_description: 'no such endpoint' } });
    const fault = answer(OAUTH, new TypeError('x is undefined'));
    expect(fault).toMatchObject({ status: 500, body: { error: 'server_error' } });
    expect(fault.headers['retry-after']).toBeUndefined();
    expect(fault.logged).toHaveLength(1);
    expect(answer(ADMIN, 'a string')).toMatchObject({ status: 500, body: { title: 'Internal Server Error' } });
  });
});
