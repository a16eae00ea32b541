export { parseKek, sealJson, openJson, isSealed, type SealedJson, type SealedEnvelope, type SealContext } from './kek';
export { LedgerSecrets, MASTER_SECRET_KEY, type LedgerSecretsOptions, type StoredMasterSecret } from './ledger-secrets';
export {
  KeyRing,
  supportedAlgs,
  isSupportedAlg,
  SIGNING_KEYS_KEY,
  type SigningAlg,
  type KeyRingOptions,
  type AccessTokenClaims,
  type PublicJwk,
  type StoredKeySet,
  type StoredSigningKey,
} from './key-ring';
export { SigningUnavailableError } from './sign-thread';
