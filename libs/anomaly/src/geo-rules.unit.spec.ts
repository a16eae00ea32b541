import type { PublicEvent } from '@token-ledger/envelope';
import type { Detection } from './detection';
import { AnomalyEngine, type RuleContext } from './engine';
import { greatCircleKm, openGeoLocator, type GeoLocator } from './geo';
import { TEST_ADDRESSES as ip } from './geo/test-addresses';
import { DEFAULT_RULES } from './rules-config';
import { MemoryStateStore } from './state';
import { EventScript } from './testing/events';

/** impossible_travel and geo_mismatch with the real bundled database (no table of made-up places). */
describe('travel rules with the bundled geolocation database', () => {
  let geo: GeoLocator;
  let ctx: RuleContext;
  beforeAll(async () => {
    geo = await openGeoLocator();
    ctx = { rules: DEFAULT_RULES, locate: (a) => geo.locate(a) };
  });

  /** A family used from each address in turn, `gaps[i]` seconds after the previous use. */
  async function journey(addresses: string[], gapsSeconds: number[]): Promise<Detection[]> {
    const s = new EventScript();
    const events: PublicEvent[] = [s.issued('fam_t', { ip: addresses[0] })];
    addresses.slice(1).forEach((a, i) => events.push(s.advance(gapsSeconds[i]).rotated('fam_t', { ip: a }, i + 2)));
    const { detections } = await new AnomalyEngine(new MemoryStateStore(), ctx).evaluate(events);
    return detections;
  }
  const rules = (ds: Detection[]) => ds.map((d) => d.rule).sort();

  it('Berlin → Munich (~500 km) in 2 h is 250 km/h: nothing fires (SPEC: not at 900 km/h)', async () => {
    expect(greatCircleKm(geo.locate(ip.berlin)!, geo.locate(ip.munich)!)).toBeGreaterThan(450);
    expect(await journey([ip.berlin, ip.munich], [2 * 3600])).toEqual([]);
  });

  it('Berlin → Munich in 30 min is ~990 km/h: impossible_travel, with the evidence', async () => {
    const [d] = await journey([ip.berlin, ip.munich], [30 * 60]);
    expect(d.rule).toBe('impossible_travel');
    expect(d.evidence).toMatchObject({
      from: { ip: ip.berlin, country: 'DE' },
      to: { ip: ip.munich, country: 'DE', city: 'Munich' },
      elapsedSeconds: 1800,
      maxSpeedKmh: 900,
    });
    expect(d.evidence.speedKmh).toBeGreaterThan(900);
  });

  it('the speed threshold is strict: Berlin → Paris just under 900 km/h does not fire, just over does', async () => {
    const km = greatCircleKm(geo.locate(ip.berlin)!, geo.locate(ip.paris)!);
    const atSpeed = (kmh: number) => Math.round((km / kmh) * 3600);
    expect(rules(await journey([ip.berlin, ip.paris], [atSpeed(890)]))).toEqual(['geo_mismatch']);
    expect(rules(await journey([ip.berlin, ip.paris], [atSpeed(910)]))).toEqual(['geo_mismatch', 'impossible_travel']);
  });

  it('Berlin → New York in 1 h fires both travel rules; in 8 h only the country change', async () => {
    expect(rules(await journey([ip.berlin, ip.newYork], [3600]))).toEqual(['geo_mismatch', 'impossible_travel']);
    expect(rules(await journey([ip.berlin, ip.newYork], [8 * 3600]))).toEqual(['geo_mismatch']);
    const [, travel] = (await journey([ip.berlin, ip.newYork], [0])).sort((a, b) => a.rule.localeCompare(b.rule));
    expect(travel.evidence.speedKmh).toBeNull(); // the same instant: no finite speed, still impossible
  });

  it('the same metro area never fires, at any speed', async () => {
    expect(await journey([ip.berlin, ip.berlinNearby, ip.ipv6Berlin, ip.berlin], [0, 1, 1])).toEqual([]);
  });

  it('private, loopback, CGNAT, documentation and unknown addresses never fire and are not a location', async () => {
    const hidden = ['10.1.2.3', '192.168.1.1', '172.16.5.4', '127.0.0.1', '100.64.0.1', '169.254.1.1', '203.0.113.9', '198.51.100.1', 'fd00::1', '::1', ip.unknown];
    for (const a of hidden) expect(geo.locate(a)).toBeUndefined();
    expect(await journey([ip.berlin, ...hidden, ip.berlinNearby], hidden.map(() => 10).concat(10))).toEqual([]);
    expect(await journey(['10.0.0.1', ip.sydney], [1])).toEqual([]); // nothing located before Sydney
  });

  it('a country-level position never fires impossible_travel (geo_mismatch still sees the country)', async () => {
    expect(geo.locate(ip.countryOnly)).toMatchObject({ country: 'DE', precision: 'country' });
    expect(await journey([ip.berlin, ip.countryOnly, ip.berlin], [1, 1])).toEqual([]);
    expect(rules(await journey([ip.berlin, ip.countryOnlyNoCity], [1]))).toEqual(['geo_mismatch']);
  });

  it('works on IPv6: Berlin → Paris in 10 minutes', async () => {
    expect(rules(await journey([ip.ipv6Berlin, ip.ipv6Paris], [600]))).toEqual(['geo_mismatch', 'impossible_travel']);
  });

  it('compares consecutive located uses of one family only', async () => {
    const s = new EventScript();
    const events = [s.issued('fam_1', { ip: ip.berlin }), s.advance(60).issued('fam_2', { ip: ip.sydney }), s.advance(60).rotated('fam_1', { ip: ip.berlinNearby })];
    const { detections } = await new AnomalyEngine(new MemoryStateStore(), ctx).evaluate(events);
    expect(detections).toEqual([]);
  });
});
