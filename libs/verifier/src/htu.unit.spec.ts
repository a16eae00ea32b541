import { normaliseHtu } from './htu';

describe('normaliseHtu (RFC 9449 §4.3, RFC 3986 §6.2.2)', () => {
  it.each([
    ['HTTPS://RS.Example/orders', 'https://rs.example/orders'],
    ['https://rs.example:443/orders', 'https://rs.example/orders'],
    ['http://rs.example:80/orders', 'http://rs.example/orders'],
    ['https://rs.example', 'https://rs.example/'],
    ['https://rs.example/a/./b/../orders', 'https://rs.example/a/orders'],
    ['https://rs.example/orders?page=2#top', 'https://rs.example/orders'],
    ['https://rs.example/%7euser/%2f', 'https://rs.example/~user/%2F'],
    ['https://rs.example/%6Frders', 'https://rs.example/orders'],
  ])('%s → %s', (input, expected) => {
    expect(normaliseHtu(input)).toBe(expected);
  });

  it('keeps what makes a different resource different: port, path case, scheme', () => {
    expect(normaliseHtu('https://rs.example:8443/orders')).toBe('https://rs.example:8443/orders');
    expect(normaliseHtu('https://rs.example/Orders')).not.toBe(normaliseHtu('https://rs.example/orders'));
    expect(normaliseHtu('http://rs.example/orders')).not.toBe(normaliseHtu('https://rs.example/orders'));
  });

  it.each(['/orders', 'rs.example/orders', 'ftp://rs.example/x', 'https://user:pw@rs.example/x', 'not a url'])('refuses %s', (input) => {
    expect(normaliseHtu(input)).toBeUndefined();
  });
});
