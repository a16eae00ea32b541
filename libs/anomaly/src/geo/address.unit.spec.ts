import { isIPv4 } from 'node:net';
import fc from 'fast-check';
import { classifyAddress, inspectAddress, type AddressClass } from './address';

const cases: Array<[string, AddressClass]> = [
  // IPv4 public
  ['8.8.8.8', 'public'],
  ['1.1.1.1', 'public'],
  ['160.45.10.10', 'public'],
  ['9.255.255.255', 'public'], // just below 10/8
  ['11.0.0.0', 'public'], // just above 10/8
  ['172.15.255.255', 'public'], // below 172.16/12
  ['172.32.0.0', 'public'], // above 172.16/12
  ['100.63.255.255', 'public'], // below 100.64/10
  ['100.128.0.0', 'public'], // above 100.64/10
  ['192.0.1.255', 'public'],
  ['192.0.3.0', 'public'],
  ['198.17.255.255', 'public'],
  ['198.20.0.0', 'public'], // above 198.18/15
  ['223.255.255.255', 'public'], // last before multicast
  ['192.31.196.1', 'public'], // AS112 anycast: routed, just not locatable in any useful way
  // IPv4 private
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.254', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'private'], // CGNAT
  ['100.127.255.255', 'private'],
  ['127.0.0.1', 'private'],
  ['127.255.255.254', 'private'],
  ['169.254.169.254', 'private'], // link-local (cloud metadata)
  // IPv4 reserved
  ['0.0.0.0', 'reserved'],
  ['0.1.2.3', 'reserved'],
  ['192.0.0.9', 'reserved'],
  ['192.0.2.1', 'reserved'], // TEST-NET-1
  ['198.51.100.7', 'reserved'], // TEST-NET-2
  ['203.0.113.200', 'reserved'], // TEST-NET-3
  ['198.18.0.1', 'reserved'], // benchmarking
  ['198.19.255.255', 'reserved'],
  ['192.88.99.1', 'reserved'],
  ['224.0.0.1', 'reserved'], // multicast
  ['239.255.255.250', 'reserved'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'], // broadcast
  // IPv6 public
  ['2001:638:809::1', 'public'],
  ['2001:4860:4860::8888', 'public'],
  ['2606:4700:4700::1111', 'public'],
  ['2001:200::1', 'public'], // just above 2001::/23
  ['2001:db7:ffff::1', 'public'], // just below 2001:db8::/32
  ['2001:db9::1', 'public'],
  ['3ffe::1', 'public'], // global unicast, unallocated (the database does not know it)
  ['2A00:1450:4001:800::200E', 'public'], // upper case
  // IPv6 private
  ['::1', 'private'],
  ['fc00::1', 'private'],
  ['fd12:3456:789a::1', 'private'],
  ['fe80::1', 'private'],
  ['fe80::1%eth0', 'private'], // with a zone index
  ['febf:ffff::1', 'private'],
  ['fec0::1', 'private'],
  ['64:ff9b:1::a00:1', 'private'],
  // IPv6 reserved
  ['::', 'reserved'],
  ['::2', 'reserved'],
  ['::8.8.8.8', 'reserved'], // IPv4-compatible (deprecated), not IPv4-mapped
  ['100::1', 'reserved'], // discard-only
  ['2001::1', 'reserved'], // Teredo
  ['2001:2::1', 'reserved'], // benchmarking
  ['2001:20::1', 'reserved'], // ORCHIDv2
  ['2001:db8::1', 'reserved'], // documentation
  ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'reserved'],
  ['3fff::1', 'reserved'], // documentation (RFC 9637)
  ['ff02::1', 'reserved'], // multicast
  ['ff05::1:3', 'reserved'],
  ['4000::1', 'reserved'], // outside 2000::/3
  ['1fff:ffff::1', 'reserved'],
  ['5f00::1', 'reserved'],
  ['fe00::1', 'reserved'],
  // IPv6 carrying IPv4: classified as the IPv4 address
  ['::ffff:8.8.8.8', 'public'],
  ['::ffff:808:808', 'public'],
  ['::FFFF:160.45.10.10', 'public'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:127.0.0.1', 'private'],
  ['::ffff:192.0.2.1', 'reserved'],
  ['::ffff:0.0.0.0', 'reserved'],
  ['64:ff9b::8.8.8.8', 'public'],
  ['64:ff9b::c0a8:101', 'private'],
  ['2002:808:808::1', 'public'], // 6to4 of 8.8.8.8
  ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
  ['2002:cb00:7101::1', 'reserved'], // 6to4 of 203.0.113.1
  // invalid
  ['', 'invalid'],
  ['localhost', 'invalid'],
  ['1.2.3', 'invalid'],
  ['1.2.3.4.5', 'invalid'],
  ['256.1.1.1', 'invalid'],
  ['010.1.1.1', 'invalid'], // leading zero (octal in some parsers)
  [' 8.8.8.8', 'invalid'],
  ['8.8.8.8 ', 'invalid'],
  ['8.8.8.8:443', 'invalid'],
  ['[::1]', 'invalid'],
  ['[2001:db8::1]:443', 'invalid'],
  ['2001:db8::/32', 'invalid'],
  ['1::2::3', 'invalid'],
  ['12345::1', 'invalid'],
  ['::ffff:1.2.3.256', 'invalid'],
  ['fe80::1%', 'invalid'],
];

describe('classifyAddress', () => {
  it.each(cases)('%s → %s', (ip, expected) => {
    expect(classifyAddress(ip)).toBe(expected);
  });

  it('accepts exactly the IPv4 syntax node:net accepts', () => {
    const text = fc.array(fc.constantFrom('0', '1', '2', '5', '9', '.', '25', '255', '256', '00', '01', ' ', 'x'), { maxLength: 12 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (s) => {
        expect(classifyAddress(s) !== 'invalid').toBe(isIPv4(s));
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), (n) => {
        const ip = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
        expect(classifyAddress(ip)).not.toBe('invalid');
      }),
    );
  });

  it('treats non-strings as invalid', () => {
    expect(classifyAddress(undefined as unknown as string)).toBe('invalid');
    expect(classifyAddress(0x08080808 as unknown as string)).toBe('invalid');
  });
});

describe('inspectAddress', () => {
  it('looks a public IPv4 up in the IPv4 database as given', () => {
    expect(inspectAddress('8.8.8.8')).toEqual({ class: 'public', lookup: { family: 4, address: '8.8.8.8' } });
  });

  it('looks an IPv6 address carrying an IPv4 up as that IPv4 address', () => {
    for (const ip of ['::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '2002:808:808:1::2']) {
      expect(inspectAddress(ip)).toEqual({ class: 'public', lookup: { family: 4, address: '8.8.8.8' } });
    }
  });

  it('looks a public IPv6 up in the IPv6 database, without its zone index', () => {
    expect(inspectAddress('2001:638:809::1')).toEqual({ class: 'public', lookup: { family: 6, address: '2001:638:809::1' } });
    expect(inspectAddress('2001:638:809::1%eth0').lookup).toEqual({ family: 6, address: '2001:638:809::1' });
  });

  it('gives no lookup for private, reserved and invalid addresses', () => {
    for (const ip of ['10.0.0.1', '::1', '192.0.2.1', '2001:db8::1', 'nonsense']) expect(inspectAddress(ip).lookup).toBeUndefined();
  });

  it('expands every IPv6 spelling of one address alike', () => {
    const spellings = ['0:0:0:0:0:ffff:a00:1', '::ffff:10.0.0.1', '0::ffff:0a00:0001', '0000:0000:0000:0000:0000:ffff:10.0.0.1'];
    for (const ip of spellings) expect(classifyAddress(ip)).toBe('private');
    expect(classifyAddress('0:0:0:0:0:0:0:1')).toBe('private');
    expect(classifyAddress('0:0:0:0:0:0:0:0')).toBe('reserved');
    expect(classifyAddress('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('reserved');
    expect(classifyAddress('1:2:3:4:5:6:8.8.8.8')).toBe('reserved'); // 1::/16 is outside 2000::/3
    expect(classifyAddress('2a00::8.8.8.8')).toBe('public');
  });
});
