import type { SsfSubjectId } from '@token-ledger/domain';

/** RFC 8417 §2.3: the `typ` header of a Security Event Token (explicit typing, RFC 8725 §3.11). */
export const SET_TYP = 'secevent+jwt';

/** RFC 8935 §2: the media type of a pushed SET. */
export const SET_MEDIA_TYPE = 'application/secevent+jwt';

/**
 * The claims of one SET (RFC 8417 §2.2, SSF 1.0 §4): no `sub` (the subject is `sub_id`) and no `exp`
 * (a SET is a statement of fact, not a credential; SSF 1.0 §4.1.9). `events` holds exactly one event.
 */
export interface SetClaims {
  iss: string;
  aud: string | string[];
  iat: number;
  jti: string;
  txn?: string;
  sub_id: SsfSubjectId;
  events: Record<string, Record<string, unknown>>;
}

export interface SetClaimsInput {
  issuer: string;
  aud: readonly string[];
  /** Epoch seconds. */
  iat: number;
  jti: string;
  txn?: string | null;
  subId: SsfSubjectId;
  eventType: string;
  payload: Record<string, unknown>;
}

/** The claims as they are stored in the outbox and signed at delivery. A single audience is a string (RFC 7519 §4.1.3). */
export function buildSetClaims(input: SetClaimsInput): SetClaims {
  return {
    iss: input.issuer,
    aud: input.aud.length === 1 ? input.aud[0] : [...input.aud],
    iat: input.iat,
    jti: input.jti,
    ...(input.txn ? { txn: input.txn } : {}),
    sub_id: input.subId,
    events: { [input.eventType]: input.payload },
  };
}

/** Signs a SET's claims as a JWS compact serialization, header `{alg, kid, typ}`: KeyRing.signJws. */
export interface SetSigner {
  signJws(typ: string, payload: object): Promise<string>;
}

export function signSet(signer: SetSigner, claims: SetClaims): Promise<string> {
  return signer.signJws(SET_TYP, claims);
}
