import { greatCircleKm } from '@token-ledger/anomaly';

/** What the seed needs to know of a located address (the engine's own geolocation, see main.ts). */
export interface Located {
  precision: 'city' | 'country';
  country: string;
  city?: string;
  lat: number;
  lon: number;
}

export interface PoolAddress extends Located {
  ip: string;
}

/**
 * Public IPv4 addresses for the seed, located with the same database the engine uses, so the seed
 * knows in advance which rules its events make fire:
 * - `home`: city-located addresses, at most two per /16, so the families' addresses are spread over
 *   thousands of networks and dozens of countries;
 * - `away[i]`: for home address i, the index of another home address in a different country at least
 *   `AWAY_MIN_KM` away (-1 if none): the "travelling" families jump there;
 * - `countryOnly`: addresses the database knows only to country level (never impossible_travel);
 * - `attackers`: a few more city-located addresses (not in `home`) that send the rejected refreshes.
 */
export interface IpPool {
  home: PoolAddress[];
  away: number[];
  countryOnly: PoolAddress[];
  attackers: PoolAddress[];
  stats: {
    candidates: number;
    unlocated: number;
    cityLocated: number;
    countryOnly: number;
    countries: number;
    networks16: number;
  };
}

export const AWAY_MIN_KM = 500;
const ATTACKERS = 8;

/** Deterministic PRNG (mulberry32): the same pool every run for the same database. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const format4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

export function buildIpPool(locate: (ip: string) => Located | undefined, homeSize = 4000, maxCandidates = 400_000): IpPool {
  const random = prng(0x7e57_1ed9);
  const home: PoolAddress[] = [];
  const countryOnly: PoolAddress[] = [];
  const attackers: PoolAddress[] = [];
  const per16 = new Map<number, number>();
  let candidates = 0;
  let unlocated = 0;
  let cityLocated = 0;
  let countryLocated = 0;
  while (candidates < maxCandidates && (home.length < homeSize || attackers.length < ATTACKERS || countryOnly.length < 200)) {
    candidates++;
    const n = Math.floor(random() * 4294967296) >>> 0;
    // skip host parts .0 and .255 (network/broadcast-looking addresses)
    if ((n & 255) === 0 || (n & 255) === 255) continue;
    const ip = format4(n);
    const point = locate(ip);
    if (!point) {
      unlocated++;
      continue;
    }
    const located: PoolAddress = { ip, precision: point.precision, country: point.country, city: point.city, lat: point.lat, lon: point.lon };
    if (point.precision !== 'city') {
      countryLocated++;
      if (countryOnly.length < 200) countryOnly.push(located);
      continue;
    }
    cityLocated++;
    const net = n >>> 16;
    const seen = per16.get(net) ?? 0;
    if (seen >= 2) continue;
    per16.set(net, seen + 1);
    if (home.length < homeSize) home.push(located);
    else if (attackers.length < ATTACKERS) attackers.push(located);
  }
  if (home.length < 100 || attackers.length < ATTACKERS) {
    throw new Error(
      `the geolocation database located too few random public IPv4 addresses to city level ` +
        `(${home.length} of ${candidates} candidates): the seed needs at least 100`,
    );
  }

  const away = home.map((h, i) => {
    const start = (i * 7919 + 13) % home.length;
    for (let step = 0; step < home.length; step++) {
      const j = (start + step) % home.length;
      const o = home[j];
      if (o.country !== h.country && greatCircleKm(h, o) >= AWAY_MIN_KM) return j;
    }
    return -1;
  });

  return {
    home,
    away,
    countryOnly,
    attackers,
    stats: {
      candidates,
      unlocated,
      cityLocated,
      countryOnly: countryLocated,
      countries: new Set(home.map((h) => h.country)).size,
      networks16: new Set(home.map((h) => h.ip.split('.').slice(0, 2).join('.'))).size,
    },
  };
}
