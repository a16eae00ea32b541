import { isIPv6 } from 'node:net';

/**
 * What an address is for geolocation. Only `public` addresses are ever looked up:
 * - `private`: used inside a network — RFC 1918, shared CGNAT space (100.64/10), loopback,
 *   link-local, IPv6 unique-local (fc00::/7), site-local (fec0::/10), local-use NAT64 (64:ff9b:1::/48).
 *   A proxy or load balancer in front of the ledger shows up like this.
 * - `reserved`: special-purpose or not allocated for use as a source — "this network" (0/8, ::),
 *   IETF protocol assignments (192.0.0/24, 2001::/23 incl. Teredo), documentation (192.0.2/24,
 *   198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20), benchmarking (198.18/15), the old 6to4
 *   relay anycast (192.88.99/24), multicast (224/4, ff00::/8), 240/4 incl. broadcast, the IPv6
 *   discard prefix (100::/64) and all IPv6 outside global unicast (2000::/3).
 * - `invalid`: not an IPv4 or IPv6 address in text form (no brackets, ports, prefixes or spaces).
 *
 * An IPv6 address that carries an IPv4 address — IPv4-mapped (::ffff:0:0/96), the NAT64 well-known
 * prefix (64:ff9b::/96) and 6to4 (2002::/16) — is classified (and located) as that IPv4 address.
 */
export type AddressClass = 'public' | 'private' | 'reserved' | 'invalid';

export interface InspectedAddress {
  class: AddressClass;
  /** For a public address: the database to ask (an embedded IPv4 goes to the IPv4 one) and the address to ask for. */
  lookup?: { family: 4 | 6; address: string };
}

export function classifyAddress(ip: string): AddressClass {
  return inspectAddress(ip).class;
}

export function inspectAddress(ip: string): InspectedAddress {
  if (typeof ip !== 'string') return { class: 'invalid' };
  if (!ip.includes(':')) {
    const v4 = parse4(ip);
    return v4 === undefined ? { class: 'invalid' } : inspect4(ip, v4);
  }
  if (!isIPv6(ip)) return { class: 'invalid' };
  // A zone index (fe80::1%eth0) only scopes the address to an interface; classify the address.
  const zone = ip.indexOf('%');
  const address = zone === -1 ? ip : ip.slice(0, zone);
  const words = parse6(address);
  const embedded = embeddedIPv4(words);
  if (embedded !== undefined) return inspect4(format4(embedded), embedded);
  for (const r of PRIVATE_6) if (in6(words, r)) return { class: 'private' };
  for (const r of RESERVED_6) if (in6(words, r)) return { class: 'reserved' };
  if (!in6(words, GLOBAL_UNICAST_6)) return { class: 'reserved' };
  return { class: 'public', lookup: { family: 6, address } };
}

function inspect4(text: string, ip: number): InspectedAddress {
  for (const r of PRIVATE_4) if (in4(ip, r)) return { class: 'private' };
  for (const r of RESERVED_4) if (in4(ip, r)) return { class: 'reserved' };
  return { class: 'public', lookup: { family: 4, address: text } };
}

// ---------------------------------------------------------------------------------------------
// IPv4: a 32-bit unsigned number; a range is [network, prefix length].

type Range4 = readonly [network: number, bits: number];

const PRIVATE_4: readonly Range4[] = [
  '10.0.0.0/8', // RFC 1918
  '172.16.0.0/12', // RFC 1918
  '192.168.0.0/16', // RFC 1918
  '100.64.0.0/10', // shared address space (carrier-grade NAT), RFC 6598
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local
].map(cidr4);

const RESERVED_4: readonly Range4[] = [
  '0.0.0.0/8', // "this network"
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // documentation (TEST-NET-1)
  '192.88.99.0/24', // deprecated 6to4 relay anycast
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // documentation (TEST-NET-2)
  '203.0.113.0/24', // documentation (TEST-NET-3)
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved for future use, and 255.255.255.255 (limited broadcast)
].map(cidr4);

/**
 * Dotted-quad IPv4 as a number, or undefined — the syntax `net.isIPv4` accepts (four decimal
 * octets ≤ 255, no leading zeros, nothing else), hand-rolled because it is on every lookup.
 */
function parse4(text: string): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || dots !== 3) return undefined;
  return value * 256 + octet;
}

function format4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

function cidr4(text: string): Range4 {
  const [address, bits] = text.split('/');
  return [parse4(address) as number, Number(bits)];
}

// Indexing, not destructuring the range: destructuring parameters made a lookup ~3× slower.
function in4(ip: number, range: Range4): boolean {
  const bits = range[1];
  return bits === 0 || (ip ^ range[0]) >>> (32 - bits) === 0;
}

// ---------------------------------------------------------------------------------------------
// IPv6: eight 16-bit words; a range is [words, prefix length].

type Range6 = readonly [words: readonly number[], bits: number];

const PRIVATE_6: readonly Range6[] = [
  '::1/128', // loopback
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'fec0::/10', // site-local (deprecated)
  '64:ff9b:1::/48', // local-use IPv4/IPv6 translation
].map(cidr6);

const RESERVED_6: readonly Range6[] = [
  '::/128', // unspecified
  '100::/64', // discard-only
  '2001::/23', // IETF protocol assignments: Teredo, benchmarking, ORCHID, AMT, ...
  '2001:db8::/32', // documentation
  '3fff::/20', // documentation
  'ff00::/8', // multicast
].map(cidr6);

/** Everything outside it (the rest of ::/8, 100::/8 ... 1fff::, 4000:: ... fdff::, fe00::/9 ...) is not assigned for use. */
const GLOBAL_UNICAST_6: Range6 = cidr6('2000::/3');

const MAPPED_6 = cidr6('::ffff:0:0/96'); // IPv4-mapped
const NAT64_6 = cidr6('64:ff9b::/96'); // well-known NAT64 prefix, RFC 6052
const SIX_TO_FOUR_6 = cidr6('2002::/16'); // 6to4: the IPv4 address is in words 1 and 2

function embeddedIPv4(words: readonly number[]): number | undefined {
  if (in6(words, MAPPED_6) || in6(words, NAT64_6)) return ((words[6] << 16) | words[7]) >>> 0;
  if (in6(words, SIX_TO_FOUR_6)) return ((words[1] << 16) | words[2]) >>> 0;
  return undefined;
}

/** Parses an address that `isIPv6` accepted (without zone index) into eight 16-bit words. */
function parse6(text: string): number[] {
  let head = text;
  const tail: number[] = [];
  const lastColon = head.lastIndexOf(':');
  if (head.includes('.', lastColon)) {
    const v4 = parse4(head.slice(lastColon + 1)) as number; // isIPv6 checked it
    tail.push(v4 >>> 16, v4 & 0xffff);
    head = head.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const words = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const gap = head.indexOf('::');
  if (gap === -1) return [...words(head), ...tail];
  const left = words(head.slice(0, gap));
  const right = [...words(head.slice(gap + 2)), ...tail];
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function cidr6(text: string): Range6 {
  const [address, bits] = text.split('/');
  return [parse6(address), Number(bits)];
}

function in6(words: readonly number[], range: Range6): boolean {
  const network = range[0];
  let left = range[1];
  for (let i = 0; left > 0; i++, left -= 16) {
    const take = Math.min(16, left);
    if ((words[i] ^ network[i]) >>> (16 - take) !== 0) return false;
  }
  return true;
}
