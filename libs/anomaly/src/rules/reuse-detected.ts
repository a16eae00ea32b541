import type { Finding } from '../detection';
import type { Observation } from '../observation';

/** reuse_detected: the decider found a rotated token presented again (TokenReuseDetected). */
export function reuseDetected(o: Observation): Finding | undefined {
  if (o.type !== 'TokenReuseDetected') return undefined;
  return {
    rule: 'reuse_detected',
    scope: 'family',
    scopeKey: o.familyId,
    evidence: {
      presentedGeneration: o.data.presentedGeneration,
      headGeneration: o.data.headGeneration,
      ip: o.ip ?? null,
      userAgent: o.userAgent ?? null,
      deviceId: o.deviceId ?? null,
    },
  };
}
