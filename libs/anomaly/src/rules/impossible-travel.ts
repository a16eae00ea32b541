import type { Finding } from '../detection';
import { greatCircleKm, impliedSpeedKmh } from '../geo';
import type { RulesConfig } from '../rules-config';
import type { UseSite } from '../state';

/**
 * impossible_travel: two consecutive city-located uses of one family farther apart than
 * `minDistanceKm` (hops within a metro area and geolocation noise never count) and faster than
 * `maxSpeedKmh`. Callers pass only city-precision sites: private, reserved, unknown and
 * country-only addresses never reach this rule.
 */
export function impossibleTravel(
  familyId: string,
  previous: UseSite | undefined,
  current: UseSite,
  config: RulesConfig['impossible_travel'],
): Finding | undefined {
  if (!previous || current.at < previous.at) return undefined;
  const km = greatCircleKm(previous, current);
  if (km < config.minDistanceKm) return undefined;
  const elapsedMs = current.at - previous.at;
  const speed = impliedSpeedKmh(km, elapsedMs);
  if (speed <= config.maxSpeedKmh) return undefined;
  return {
    rule: 'impossible_travel',
    scope: 'family',
    scopeKey: familyId,
    evidence: {
      from: siteEvidence(previous),
      to: siteEvidence(current),
      distanceKm: Math.round(km),
      elapsedSeconds: Math.round(elapsedMs / 1000),
      // JSON has no Infinity: two uses at the same instant have no finite speed.
      speedKmh: Number.isFinite(speed) ? Math.round(speed) : null,
      maxSpeedKmh: config.maxSpeedKmh,
    },
  };
}

function siteEvidence(site: UseSite): Record<string, unknown> {
  return {
    ip: site.ip,
    city: site.city ?? null,
    country: site.country,
    lat: site.lat,
    lon: site.lon,
    at: new Date(site.at).toISOString(),
  };
}
