import type { SsfPolicy } from '@token-ledger/domain';
import type { LedgerConfig } from '../config/ledger-config';

/** What the transmitter's configuration tells the SSF stream decider (libs/domain ssf-stream.ts). */
export function ssfPolicy(config: LedgerConfig): SsfPolicy {
  return {
    issuer: config.issuer,
    allowInsecurePush: config.ssfAllowInsecurePush,
    minVerificationIntervalMs: config.ssfMinVerificationIntervalSeconds * 1000,
  };
}
