/**
 * The signed values of the revocation feed (SPEC §4): `token-ledger.revocations.v1` and the SSE
 * stream carry JWS compact serializations, signed with the ledger's current signing key (`kid` in
 * the header) and verified by resource servers against the ledger's JWKS, so a record written by
 * anyone else can neither revoke nor un-revoke. The JOSE `typ` names what the payload is: a
 * revocation record can never pass for an access token (`at+jwt`), a heartbeat, or the reverse.
 */
export const REVOCATION_RECORD_TYP = 'revocation+jwt';
export const REVOCATION_HEARTBEAT_TYP = 'revocation-heartbeat+jwt';
/** Kafka key of the heartbeat on the compacted topic (a family id is never this: ids are `fam_…`). */
export const HEARTBEAT_KEY = '__heartbeat__';

/**
 * Signs a payload (JSON) as a JWS with the ledger's active key: KeyRing.signJws. An interface here
 * because libs/messaging does not depend on libs/crypto (layering); the app passes the key ring.
 */
export interface FeedSigner {
  signJws(typ: string, payload: object): Promise<string>;
}

/** `{position, at}`: the feed has carried every revocation up to store `position`, as of `at`. */
export interface RevocationHeartbeat {
  position: number;
  at: string;
}
