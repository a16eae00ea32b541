/** Mean Earth radius (IUGG R1 = (2a + b) / 3), in km. */
export const EARTH_MEAN_RADIUS_KM = 6371.0088;

export interface LatLon {
  /** Degrees, −90 … 90. */
  lat: number;
  /** Degrees, −180 … 180. */
  lon: number;
}

const RAD = Math.PI / 180;

/**
 * Great-circle distance on a sphere of the mean Earth radius (haversine; within ~0.5 % of the
 * ellipsoidal distance, far below the error of IP geolocation).
 */
export function greatCircleKm(a: LatLon, b: LatLon): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2;
  // min(): rounding can push h a hair above 1 for antipodal points.
  return 2 * EARTH_MEAN_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, h)));
}

/**
 * Ground speed needed to cover `km` in `ms` milliseconds, in km/h: 0 when there is no distance
 * (whatever the time), Infinity for a distance covered in no time (or with the clock going back).
 */
export function impliedSpeedKmh(km: number, ms: number): number {
  if (!(km >= 0) || !Number.isFinite(km)) throw new RangeError(`distance must be a finite number ≥ 0 km, got ${km}`);
  if (Number.isNaN(ms)) throw new RangeError('elapsed time must be a number of milliseconds, got NaN');
  if (km === 0) return 0;
  if (ms <= 0) return Infinity;
  return km / (ms / 3_600_000);
}
