import { parseIsoInstant } from './instant';

describe('parseIsoInstant', () => {
  it.each([
    ['2024-05-01T12:00:00Z', Date.UTC(2024, 4, 1, 12)],
    ['2024-05-01T12:00Z', Date.UTC(2024, 4, 1, 12)],
    ['2024-05-01T14:00:00.250+02:00', Date.UTC(2024, 4, 1, 12, 0, 0, 250)],
    ['2024-05-01T14:00:00+0200', Date.UTC(2024, 4, 1, 12)],
    ['2024-05-01T14:00:00 02:00', Date.UTC(2024, 4, 1, 12)], // "+" decoded as a space in a query string
    ['2024-05-01t12:00:00.123456z', Date.UTC(2024, 4, 1, 12, 0, 0, 123)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
  ])('accepts %s', (raw, ms) => {
    expect(parseIsoInstant(raw)).toBe(ms);
  });

  it.each(['', 'now', '2024-05-01', '2024-05-01T12:00:00', '2024-02-30T00:00:00Z', '2023-02-29T00:00:00Z', '2024-05-01T24:00:00Z', '2024-05-01T12:60:00Z', '1714564800000', '2024-05-01T12:00:00Zjunk'])(
    'refuses %j',
    (raw) => {
      expect(parseIsoInstant(raw)).toBeUndefined();
    },
  );
});
