/** RFC 3986 §2.3 unreserved characters: a percent-encoding of one of them means the character itself. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The form of an HTTP(S) URI that RFC 9449 §4.3 compares `htu` in: without query and fragment, and
 * syntax-based normalised (RFC 3986 §6.2.2): scheme and host lower-cased, the default port removed,
 * an empty path as "/", dot segments removed (WHATWG URL does these), percent-encodings in upper
 * case and those of unreserved characters decoded. undefined when not an absolute http(s) URI.
 */
export function normaliseHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  const path = url.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
  return `${url.protocol}//${url.host}${path}`;
}
