import { userAgentFamily } from './user-agent';

describe('user-agent family', () => {
  const chromeMac130 = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
  const chromeMac131 = chromeMac130.replace('130.0.0.0', '131.0.6778.86');
  const safariIphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
  const firefoxWin = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0';
  const edgeWin = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.51';
  const chromeAndroid = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36';

  it('names browser and OS without versions', () => {
    expect(userAgentFamily(chromeMac130)).toBe('Chrome on macOS');
    expect(userAgentFamily(chromeMac131)).toBe(userAgentFamily(chromeMac130));
    expect(userAgentFamily(safariIphone)).toBe('Safari on iOS');
    expect(userAgentFamily(firefoxWin)).toBe('Firefox on Windows');
    expect(userAgentFamily(edgeWin)).toBe('Edge on Windows');
    expect(userAgentFamily(chromeAndroid)).toBe('Chrome on Android');
    expect(userAgentFamily('okhttp/4.12.0')).toBe('okhttp on other');
    expect(userAgentFamily('curl/8.5.0')).toBe('curl on other');
  });

  it('keeps an app product token, and knows nothing of empty agents', () => {
    expect(userAgentFamily('ExampleBank/7.2 (build 991)')).toBe('ExampleBank');
    expect(userAgentFamily('ExampleBank/7.3 (build 1002)')).toBe('ExampleBank');
    expect(userAgentFamily(undefined)).toBeUndefined();
    expect(userAgentFamily('')).toBeUndefined();
    expect(userAgentFamily('???')).toBeUndefined();
  });
});
