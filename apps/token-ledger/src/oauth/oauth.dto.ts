import type { FastifyRequest } from 'fastify';
import { OAuthError } from './oauth-error';

/**
 * The OAuth endpoints' form parameters: each a string of bounded length, required or optional.
 * Checked by hand rather than with class-validator/class-transformer: this runs on every refresh,
 * and those two cost more than the checks themselves (≈ 3.5 % of the server's CPU per rotation,
 * bench/refresh/README.md). Messages are class-validator's.
 */
type FormSpec = Readonly<Record<string, { max: number; optional?: true }>>;
type Form<S extends FormSpec> = { [K in keyof S]: S[K] extends { optional: true } ? string | undefined : string };

/** A form parameter given twice arrives as an array and fails "must be a string": RFC 6749 §3.2 forbids repeats. */
export const TOKEN_REQUEST = {
  grant_type: { max: 64 },
  refresh_token: { max: 512, optional: true },
  scope: { max: 2048, optional: true },
  client_id: { max: 256, optional: true },
  client_secret: { max: 1024, optional: true },
} as const satisfies FormSpec;

export const TOKEN_ACTION_REQUEST = {
  token: { max: 8192 },
  // Unknown hints are ignored: the token's own shape says what it is (RFC 7009 §2.1).
  token_type_hint: { max: 64, optional: true },
  client_id: { max: 256, optional: true },
  client_secret: { max: 1024, optional: true },
} as const satisfies FormSpec;

export type TokenRequest = Form<typeof TOKEN_REQUEST>;
export type TokenActionRequest = Form<typeof TOKEN_ACTION_REQUEST>;

/**
 * The declared parameters of `body` (unknown ones are dropped: RFC 6749 §3.1), or the problems.
 * An absent optional parameter is left out.
 */
export function checkForm<S extends FormSpec>(spec: S, body: unknown): { ok: true; value: Form<S> } | { ok: false; errors: string[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, errors: ['body must be an object'] };
  const input = body as Record<string, unknown>;
  const value: Record<string, string> = {};
  const errors: string[] = [];
  for (const name of Object.keys(spec)) {
    const { max, optional } = spec[name];
    const v = Object.prototype.hasOwnProperty.call(input, name) ? input[name] : undefined;
    if (v === undefined || (v === null && optional)) {
      if (!optional) errors.push(`${name} must be shorter than or equal to ${max} characters`, `${name} must be a string`);
      continue;
    }
    if (typeof v !== 'string') {
      errors.push(`${name} must be shorter than or equal to ${max} characters`, `${name} must be a string`);
      continue;
    }
    if (v.length > max) errors.push(`${name} must be shorter than or equal to ${max} characters`);
    else value[name] = v;
  }
  return errors.length === 0 ? { ok: true, value: value as Form<S> } : { ok: false, errors };
}

/** `body` checked against `spec`, from a form-encoded request only; any problem is RFC 6749's invalid_request. */
export function formBody<S extends FormSpec>(request: FastifyRequest, body: unknown, spec: S): Form<S> {
  const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const result = checkForm(spec, body ?? {});
  if (!result.ok) throw new OAuthError('invalid_request', result.errors.join('; '));
  return result.value;
}
