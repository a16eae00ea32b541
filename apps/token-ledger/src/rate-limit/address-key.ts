import { isIPv6 } from 'node:net';

/**
 * The source address a per-address limit counts against. An IPv6 caller usually holds a whole /64
 * (and can pick any address in it), so IPv6 addresses count per /64; IPv4 and IPv4-mapped IPv6
 * addresses count as the IPv4 address.
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  if (!isIPv6(address)) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  const groups = expandIPv6(address);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros (an embedded IPv4 counts as two). */
function expandIPv6(address: string): string[] {
  const split = (part: string): string[] => {
    if (part === '') return [];
    const groups = part.split(':');
    // A trailing dotted quad (e.g. 64:ff9b::192.0.2.1) stands for two groups.
    if (groups[groups.length - 1].includes('.')) groups.splice(-1, 1, 'ffff', 'ffff');
    return groups;
  };
  const gap = address.indexOf('::');
  const groups =
    gap < 0
      ? split(address)
      : (() => {
          const head = split(address.slice(0, gap));
          const tail = split(address.slice(gap + 2));
          return [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
        })();
  return groups.map((g) => parseInt(g, 16).toString(16));
}
