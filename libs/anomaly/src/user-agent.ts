/**
 * The "user-agent family" device_change compares: browser or client library plus operating system,
 * without versions, so an update (Chrome 130 → 131) is not a device change but a different browser
 * or OS is. Unknown agents yield undefined and never fire the rule on their own.
 */
const BROWSERS: Array<[RegExp, string]> = [
  [/\bEdg(e|A|iOS)?\//, 'Edge'],
  [/\b(OPR|Opera)\//, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(Firefox|FxiOS)\//, 'Firefox'],
  [/\b(Chrome|CriOS|Chromium)\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
  [/\bokhttp\//i, 'okhttp'],
  [/\bcurl\//i, 'curl'],
  [/\bpython-requests\//i, 'python-requests'],
  [/\bundici\b|\bnode-fetch\b|\bnode\b/i, 'node'],
  [/\bCFNetwork\//, 'CFNetwork'],
  [/\bDalvik\//, 'Dalvik'],
];
const SYSTEMS: Array<[RegExp, string]> = [
  [/\b(iPhone|iPad|iPod)\b|\biOS\b/, 'iOS'],
  [/\bAndroid\b/, 'Android'],
  [/\bWindows\b/, 'Windows'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMac OS X\b|\bMacintosh\b|\bDarwin\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

export function userAgentFamily(userAgent: string | undefined): string | undefined {
  if (!userAgent) return undefined;
  const ua = userAgent.slice(0, 512);
  const browser = BROWSERS.find(([re]) => re.test(ua))?.[1];
  const system = SYSTEMS.find(([re]) => re.test(ua))?.[1];
  if (!browser && !system) {
    // An app's own agent ("MyApp/2.3 (build 77)"): its product token without the version.
    const product = /^([A-Za-z][\w.-]{0,63})\//.exec(ua)?.[1];
    return product;
  }
  return [browser ?? 'other', system ?? 'other'].join(' on ');
}
