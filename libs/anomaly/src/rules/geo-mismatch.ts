import type { Finding } from '../detection';
import type { FamilyTrack } from '../state';

/** geo_mismatch: a family used from a different country than its previous (located) use. */
export function geoMismatch(
  familyId: string,
  previous: FamilyTrack['lastCountry'],
  current: { country: string; at: number; ip: string },
): Finding | undefined {
  if (!previous || previous.country === current.country) return undefined;
  return {
    rule: 'geo_mismatch',
    scope: 'family',
    scopeKey: familyId,
    evidence: {
      fromCountry: previous.country,
      toCountry: current.country,
      fromIp: previous.ip,
      toIp: current.ip,
      previousAt: new Date(previous.at).toISOString(),
    },
  };
}
