/**
 * A real browser for the console's end-to-end tests: Debian's `chromium` package driven by
 * playwright-core (which never downloads a browser). Resolved like the backends of ../backends.ts:
 * CHROMIUM_PATH, else /usr/bin/chromium; missing → the suite is skipped with the reason, unless
 * REQUIRE_BACKENDS names `chromium` (CI does): then it fails.
 */
import { existsSync } from 'node:fs';
import { requiredBackends } from '../backends';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidate = env.CHROMIUM_PATH?.trim() || '/usr/bin/chromium';
  return existsSync(candidate) ? candidate : undefined;
}

/** `describe` for a suite that drives Chromium; `body` gets the executable's path. */
export function describeWithChromium(title: string, body: (executablePath: string) => void): void {
  const executable = chromiumPath();
  if (executable) {
    describe(title, () => body(executable));
    return;
  }
  const reason = `chromium unavailable: no ${process.env.CHROMIUM_PATH ? `CHROMIUM_PATH (${process.env.CHROMIUM_PATH})` : '/usr/bin/chromium'} (apt-get install chromium)`;
  if (requiredBackends().has('chromium')) {
    describe(title, () => {
      it('requires chromium', () => {
        throw new Error(`${reason}, and REQUIRE_BACKENDS=${process.env.REQUIRE_BACKENDS} requires it`);
      });
    });
    return;
  }
  console.warn(`${title}: skipped: ${reason}`);
  describe.skip(`${title} (skipped: ${reason})`, () => {
    it('drives the console in Chromium', () => undefined);
  });
}
