import { greatCircleKm, impliedSpeedKmh } from './distance';

const berlin = { lat: 52.52, lon: 13.405 };
const munich = { lat: 48.1351, lon: 11.582 };
const london = { lat: 51.5074, lon: -0.1278 };
const newYork = { lat: 40.7128, lon: -74.006 };
const sydney = { lat: -33.8688, lon: 151.2093 };
const saoPaulo = { lat: -23.5505, lon: -46.6333 };
const paris = { lat: 48.8566, lon: 2.3522 };

/** Within `pct` percent of `expected`. */
function near(actual: number, expected: number, pct = 1): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual((expected * pct) / 100);
}

describe('greatCircleKm', () => {
  it('matches known city distances within 1 %', () => {
    near(greatCircleKm(berlin, munich), 504);
    near(greatCircleKm(london, newYork), 5570);
    near(greatCircleKm(paris, london), 344);
    near(greatCircleKm(berlin, newYork), 6385);
    near(greatCircleKm(sydney, london), 16990);
    near(greatCircleKm(saoPaulo, paris), 9395);
  });

  it('is 0 for the same point and symmetric', () => {
    expect(greatCircleKm(berlin, berlin)).toBe(0);
    expect(greatCircleKm(berlin, munich)).toBeCloseTo(greatCircleKm(munich, berlin), 9);
  });

  it('handles the antimeridian and the poles', () => {
    // 1° of longitude on the equator across ±180.
    near(greatCircleKm({ lat: 0, lon: 179.5 }, { lat: 0, lon: -179.5 }), 111.195);
    // Pole to pole: half the circumference of the mean sphere.
    near(greatCircleKm({ lat: 90, lon: 0 }, { lat: -90, lon: 0 }), Math.PI * 6371.0088, 0.0001);
    // Antipodes do not produce NaN.
    expect(greatCircleKm({ lat: 10, lon: 20 }, { lat: -10, lon: -160 })).toBeCloseTo(Math.PI * 6371.0088, 3);
  });

  it('uses the mean Earth radius: 1° along a meridian is 111.195 km', () => {
    expect(greatCircleKm({ lat: 0, lon: 0 }, { lat: 1, lon: 0 })).toBeCloseTo(111.195, 3);
  });
});

describe('impliedSpeedKmh', () => {
  it('is distance over time in hours', () => {
    expect(impliedSpeedKmh(500, 2 * 3_600_000)).toBe(250);
    expect(impliedSpeedKmh(900, 3_600_000)).toBe(900);
    expect(impliedSpeedKmh(1, 1000)).toBe(3600);
  });

  it('is 0 without distance, whatever the time', () => {
    expect(impliedSpeedKmh(0, 0)).toBe(0);
    expect(impliedSpeedKmh(0, -5)).toBe(0);
    expect(impliedSpeedKmh(0, 60_000)).toBe(0);
  });

  it('is Infinity for a distance covered in no time or with the clock going back', () => {
    expect(impliedSpeedKmh(500, 0)).toBe(Infinity);
    expect(impliedSpeedKmh(500, -1000)).toBe(Infinity);
  });

  it('rejects meaningless input', () => {
    expect(() => impliedSpeedKmh(-1, 1000)).toThrow(RangeError);
    expect(() => impliedSpeedKmh(NaN, 1000)).toThrow(RangeError);
    expect(() => impliedSpeedKmh(Infinity, 1000)).toThrow(RangeError);
    expect(() => impliedSpeedKmh(10, NaN)).toThrow(RangeError);
  });
});
