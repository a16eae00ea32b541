import { openGeoLocator, type GeoLocator } from '@token-ledger/anomaly';

/**
 * The geo database is read-only and large (about 135 MB in memory): one open copy per path per
 * thread, shared by the anomaly engine (when it runs in this thread) and the forensic timeline.
 * Opened on first use; a failed open is forgotten so the next use tries again.
 */
const geoByPath = new Map<string, Promise<GeoLocator>>();

export function sharedGeoLocator(path: string | undefined): Promise<GeoLocator> {
  const key = path ?? '';
  let geo = geoByPath.get(key);
  if (!geo) {
    geo = openGeoLocator(path ? { path } : {});
    geoByPath.set(key, geo);
    geo.catch(() => geoByPath.delete(key));
  }
  return geo;
}
