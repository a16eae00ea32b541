import { addressKey } from './address-key';
import { formatLimit, parseLimit } from './limit-spec';

describe('parseLimit', () => {
  it.each([
    ['30/1m', { points: 30, windowSeconds: 60 }],
    ['30/m', { points: 30, windowSeconds: 60 }],
    ['50000/10s', { points: 50000, windowSeconds: 10 }],
    ['1/s', { points: 1, windowSeconds: 1 }],
    ['100/24h', { points: 100, windowSeconds: 86400 }],
    [' 7/2h ', { points: 7, windowSeconds: 7200 }],
    ['off', 'off'],
  ])('%s is %j', (raw, expected) => {
    expect(parseLimit(raw)).toEqual(expected);
  });

  it.each(['', 'on', '0/1m', '-1/1m', '10', '10/', '10/0s', '10/1d', '10/25h', '1.5/1s', '10/1 m', '2000000000/1s', 'OFF'])('refuses %j', (raw) => {
    expect(() => parseLimit(raw)).toThrow(/expected N\/WINDOW/);
  });

  it('formats a setting back', () => {
    expect(formatLimit(parseLimit('30/1m'))).toBe('30/60s');
    expect(formatLimit('off')).toBe('off');
  });
});

describe('addressKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s counts as %s', (ip, key) => {
    expect(addressKey(ip)).toBe(key);
  });

  it('puts every address of one /64 under one key, and other /64s under others', () => {
    expect(addressKey('2001:db8:aa:bb:1::1')).toBe(addressKey('2001:db8:aa:bb:ffff:ffff:ffff:ffff'));
    expect(addressKey('2001:db8:aa:bb::1')).not.toBe(addressKey('2001:db8:aa:bc::1'));
  });
});
