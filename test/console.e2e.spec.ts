import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { TEST_ADDRESSES } from '../libs/anomaly/src/geo/test-addresses';
import { call, createKey } from './support/api-keys-suite';
import { describeWithBackend } from './backends';
import { CHROMIUM_ARGS, describeWithChromium } from './support/browser';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

/**
 * The analyst console (issue 18) in a real browser against a running ledger with real data: a
 * family with a reuse incident (rotate, rotate from elsewhere, present an old token → reuse →
 * revoked) and the anomalies it raised. Signs in, searches, reads the family's history, moves the
 * time slider to before the reuse, revokes a subject's sessions and acknowledges an anomaly.
 * Screenshots of every page at 1280×800 and 390×844 go to test/artifacts/console/.
 */
const ROOT = path.join(__dirname, '..');
const ARTIFACTS = path.join(__dirname, 'artifacts', 'console');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const IPHONE_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const LAPTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * dist/console as `npm run build` makes it: built unless a build newer than every console source
 * (and the lockfile) is there already — a build costs 10–30 s on a loaded machine.
 */
function consoleBuild(): Promise<string> {
  const out = path.join(ROOT, 'dist', 'console');
  const index = path.join(out, 'index.html');
  const sources = Math.max(newestMtime(path.join(ROOT, 'apps', 'console')), statSync(path.join(ROOT, 'package-lock.json')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs > sources) return Promise.resolve(out);
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const args = [vite, 'build', '--config', path.join(ROOT, 'apps/console/vite.config.mjs'), '--logLevel', 'warn'];
  return new Promise((resolve, reject) =>
    // jest sets NODE_ENV=test, which would give Vite's non-production build: build what ships.
    execFile(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } }, (error, _stdout, stderr) => (error ? reject(new Error(`console build failed: ${stderr}`)) : resolve(out))),
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeWithChromium('analyst console in Chromium', (executablePath) => describeWithBackend('postgres', 'against a ledger on PostgreSQL', (databaseUrl) => {
  let ledger: Ledger;
  let api: LedgerClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let analyst: { key: string };
  let responder: { key: string; keyId: string };
  /** The family with the reuse incident, and two more devices of the same subject. */
  let incident: string;
  let laptop: string;
  let tablet: string;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The ledger serves dist/console (its default LEDGER_CONSOLE_DIR); X-Forwarded-For from the
    // test stands for users around the world.
    const [started] = await Promise.all([
      // LEDGER_KEK: the hash chain's head is keyed, so verification can say "ok" (not just "unkeyed").
      startLedger({ store: { kind: 'postgres', url: databaseUrl }, env: { LEDGER_TRUST_PROXY: '127.0.0.1', LEDGER_KEK: randomBytes(32).toString('base64') } }),
      consoleBuild(),
    ]);
    ledger = started;
    api = new LedgerClient(ledger.baseUrl);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });

    // Keys: an analyst who reads, a responder who may also revoke and triage.
    analyst = await createKey(ledger.baseUrl, { name: 'analyst', scopes: ['audit:read', 'revocations:read'] });
    responder = await createKey(ledger.baseUrl, {
      name: 'incident responder',
      scopes: ['audit:read', 'revocations:read', 'families:revoke', 'subjects:revoke', 'anomalies:triage'],
    });

    // A family used from Berlin, then from Paris, then its first token replayed from New York.
    const web = await api.registerClient({ clientId: 'webmail', reuseGraceSeconds: 0 });
    const from = (ip: string, ua = IPHONE_UA) => ({ 'x-forwarded-for': ip, 'user-agent': ua, 'x-device-id': 'iphone-7f3a' });
    const f = await api.issue({ subject: 'alice@example.com', clientId: 'webmail', scope: 'api:read offline_access', context: { ip: TEST_ADDRESSES.berlin, userAgent: IPHONE_UA, deviceId: 'iphone-7f3a' } });
    incident = f.family_id;
    const g2 = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: f.refresh_token }, web, from(TEST_ADDRESSES.berlinNearby));
    expect(g2.status).toBe(200);
    const g3 = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: g2.body.refresh_token }, web, from(TEST_ADDRESSES.paris));
    expect(g3.status).toBe(200);
    // The slider stops at each distinct millisecond with events (sliderStops): the reuse must come in a
    // later one than the rotation to 3, or "before the reuse" is before that rotation too. A refresh
    // can take under a millisecond here, so wait for the clock to move on (a tick, not a sleep for state).
    const rotatedBy = Date.now();
    while (Date.now() <= rotatedBy + 1) await new Promise((r) => setTimeout(r, 1));
    const reuse = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: f.refresh_token }, web, from(TEST_ADDRESSES.newYork, LAPTOP_UA));
    expect(reuse.body.error).toBe('invalid_grant');

    // Two more devices of alice (for revoke-all) and someone else.
    laptop = (await api.issue({ subject: 'alice@example.com', clientId: 'webmail', scope: 'api:read', context: { ip: TEST_ADDRESSES.london, userAgent: LAPTOP_UA } })).family_id;
    tablet = (await api.issue({ subject: 'alice@example.com', clientId: 'webmail', scope: 'api:read', context: { ip: TEST_ADDRESSES.hamburg, userAgent: 'TabletApp/3.1 (Android 14)' } })).family_id;
    await api.issue({ subject: 'bob@example.com', clientId: 'webmail', scope: 'api:read', context: { ip: TEST_ADDRESSES.sydney, userAgent: LAPTOP_UA } });

    // The read models and the anomaly engine catch up (bounded waits, never a fixed sleep).
    await until('the reuse anomaly', async () => {
      const res = await call(ledger.baseUrl, ADMIN_TOKEN, 'GET', `/v1/anomalies?familyId=${incident}`);
      return res.body?.items?.some((a: { rule: string }) => a.rule === 'reuse_detected') ? true : undefined;
    });
    await until('the audit view', async () => {
      const res = await call(ledger.baseUrl, ADMIN_TOKEN, 'GET', `/v1/audit?subject=bob%40example.com`);
      return res.body?.items?.length ? true : undefined;
    });

    context = await browser.newContext({ viewport: DESKTOP, baseURL: ledger.baseUrl });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('console', (m) => {
      if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 80_000);

  afterAll(async () => {
    await browser?.close();
    await ledger?.destroy();
  });

  /** Screenshots of the page as it is now, at desktop and phone width. */
  async function shoot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-1280x800.png`), fullPage: true });
    await page.setViewportSize(PHONE);
    // Readable on a phone: nothing makes the page scroll sideways.
    const overflowing = (await page.evaluate(`(() => {
      const width = ${PHONE.width};
      if (document.documentElement.scrollWidth <= width) return [];
      return [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > width + 1 && !el.closest('svg'))
        .map((el) => el.tagName.toLowerCase() + '.' + el.className)
        .slice(0, 5);
    })()`)) as string[];
    expect({ page: name, overflowing }).toEqual({ page: name, overflowing: [] });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-390x844.png`), fullPage: true });
    await page.setViewportSize(DESKTOP);
  }

  async function signIn(key: string): Promise<void> {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  }

  it('signs in with an API key, kept out of the URL and cookies, and shows the overview with the live revocation feed', async () => {
    await page.goto('/console/');
    await page.getByLabel('API key').waitFor();
    await shoot('sign-in');
    await signIn(analyst.key);
    expect(page.url()).not.toContain(analyst.key);
    expect(await context.cookies()).toEqual([]);
    // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('main');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual(['Overview', 'Search', 'Anomalies']);
    // The feed (fetch streaming with the key as bearer) lists the reuse revocation.
    await page.locator('.feed-list').getByRole('link', { name: incident }).waitFor();
    await page.locator('.chart-reuse .chart-total').filter({ hasText: /^[1-9]/ }).waitFor();
    await shoot('overview');
  });

  it('searches the audit trail by subject, with the query in the URL and links to the family', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Search' }).click();
    await page.getByLabel('Subject').fill('alice@example.com');
    await page.getByLabel('Event type').selectOption('TokenReuseDetected');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/#\/search\?subject=alice%40example.com&type=TokenReuseDetected/);
    const rows = page.locator('table.audit tbody tr');
    // The page keeps showing the previous answer (every event) until the new one arrives: wait for
    // the rows of another type to go before counting.
    await rows.filter({ hasNotText: 'TokenReuseDetected' }).first().waitFor({ state: 'detached' });
    await rows.first().waitFor();
    expect(await rows.count()).toBe(1);
    // Shareable: the same URL in a fresh load shows the same answer.
    await page.reload();
    await rows.first().waitFor();
    expect(await rows.first().textContent()).toContain(incident);
    await page.getByLabel('Event type').selectOption('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL((url) => !url.hash.includes('type='));
    await page.locator('table.audit tbody tr').nth(5).waitFor();
    await shoot('search');
    await rows.filter({ hasText: 'TokenReuseDetected' }).getByRole('link', { name: incident }).click();
    await page.waitForURL(new RegExp(`#/family/${incident}$`));
  });

  it('shows the family’s history with the reuse and the revocation, places on the map, the verified chain', async () => {
    const history = page.locator('ol.history > li');
    await page.locator('li[data-type="TokenFamilyRevoked"]').waitFor();
    expect(await history.evaluateAll((items) => items.map((i) => i.getAttribute('data-type')))).toEqual([
      'TokenFamilyIssued',
      'TokenRotated',
      'TokenRotated',
      'TokenReuseDetected',
      'TokenFamilyRevoked',
    ]);
    const reuse = page.locator('li[data-type="TokenReuseDetected"]');
    expect(await reuse.textContent()).toContain('generation 1 presented after rotation to 3');
    expect(await reuse.textContent()).toContain(TEST_ADDRESSES.newYork);
    expect(await reuse.textContent()).toContain('New York');
    expect(await page.locator('li[data-type="TokenFamilyRevoked"]').textContent()).toContain('reuse_detected');
    expect(await page.getByTestId('as-of').textContent()).toMatch(/now:.*revoked generation 3/);
    expect(await page.locator('.gen.fate-revoked .gen-no').textContent()).toBe('gen 3');
    expect(await page.locator('.gen .mark-reuse').count()).toBe(1);
    await page.getByTestId('verification').waitFor();
    expect(await page.getByTestId('verification').getAttribute('class')).toContain('verify-ok');
    // The map: Berlin, Paris, New York, from the offline world geometry.
    await page.locator('.map-point').nth(2).waitFor();
    expect(await page.locator('.map-country').count()).toBeGreaterThan(150);
    expect(await page.getByRole('link', { name: /DB-IP/ }).getAttribute('href')).toMatch(/^https:\/\/(www\.)?db-ip\.com/);
    await shoot('family');
  });

  it('moves the time slider to before the reuse and sees the family active', async () => {
    const reuseAt = Date.parse((await page.locator('li[data-type="TokenReuseDetected"] time').getAttribute('datetime'))!);
    const slider = page.getByRole('slider', { name: 'Instant' });
    await slider.focus();
    const asOf = page.getByTestId('as-of');
    for (let i = 0; i < 4 && !/active/.test((await asOf.textContent()) ?? ''); i++) {
      const previous = await slider.getAttribute('aria-valuetext');
      await slider.press('ArrowLeft');
      // Until the state shown is the one of the stop the slider moved to, loaded: a text read before
      // that is the previous stop's, and one more step would pass the stop this test is about.
      await page.locator(`input[aria-label="Instant"]:not([aria-valuetext="${previous}"])`).waitFor();
      const stop = await slider.getAttribute('aria-valuetext');
      await asOf.filter({ hasText: `${stop}:`, hasNotText: 'loading' }).waitFor();
    }
    expect(await asOf.textContent()).toMatch(/active generation 3/);
    const at = Date.parse(new URL(page.url()).hash.match(/at=([^&]+)/)![1].replace(/%3A/g, ':'));
    expect(at).toBeLessThan(reuseAt);
    // Events after the instant are shown as not yet happened; the state came from the server (at=).
    expect(await page.locator('li.future[data-type="TokenReuseDetected"]').count()).toBe(1);
    expect(await page.locator('li.future[data-type="TokenFamilyRevoked"]').count()).toBe(1);
    await shoot('family-before-reuse');
  });

  it('offers revocation only to a key with the revoke scopes, and revokes a subject’s sessions after confirmation', async () => {
    await page.goto(`/console/#/subject/${encodeURIComponent('alice@example.com')}`);
    await page.locator(`tr[data-family="${laptop}"]`).waitFor();
    expect(await page.getByRole('button', { name: /Revoke/ }).count()).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(responder.key);
    await page.locator(`tr[data-family="${laptop}"]`).waitFor();
    expect(await page.locator('table.families tbody tr').count()).toBe(3);
    await page.getByRole('button', { name: 'Revoke all sessions…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await shoot('subject-confirm');
    await dialog.getByRole('button', { name: 'Revoke all' }).click();
    await page.getByRole('status').filter({ hasText: 'Revoked 2 families' }).waitFor();
    for (const id of [laptop, tablet]) await page.locator(`tr[data-family="${id}"] .status-revoked`).waitFor();
    // The server agrees: both devices are revoked, by this key.
    for (const id of [laptop, tablet]) {
      const view = await until(`${id} revoked in the read model`, async () => {
        const res = await call(ledger.baseUrl, ADMIN_TOKEN, 'GET', `/v1/families/${id}`);
        return res.body?.status === 'revoked' ? res.body : undefined;
      });
      expect(view.revokedReason).toBe('admin');
    }
    await page.reload();
    await page.locator(`tr[data-family="${tablet}"] .status-revoked`).waitFor();
    await shoot('subject');
  });

  it('lists anomalies by severity and rule with readable evidence, filters in the URL, and acknowledges one', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Anomalies' }).click();
    await page.waitForURL(/#\/anomalies\?status=open/);
    const card = page.locator('li.anomaly').filter({ has: page.getByRole('heading', { name: 'reuse detected' }) });
    await card.waitFor();
    expect(await card.locator('.evidence dt').count()).toBeGreaterThan(0);
    await page.getByLabel('Severity').selectOption('high');
    await page.waitForURL(/severity=high/);
    await card.waitFor();
    await shoot('anomalies');
    const anomalyId = (await card.getAttribute('data-anomaly'))!;
    await card.getByPlaceholder('Note (optional)').fill('replayed from a laptop in New York; user confirmed theft of phone backup');
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await card.getByTestId('anomaly-status').filter({ hasText: 'acknowledged' }).waitFor();
    // Recorded: the server lists it as acknowledged.
    const acknowledged = await until('the acknowledgement in the read model', async () => {
      const res = await call(ledger.baseUrl, responder.key, 'GET', `/v1/anomalies?status=acknowledged`);
      return res.body?.items?.find((a: { anomalyId: string }) => a.anomalyId === anomalyId);
    });
    expect(acknowledged.status).toBe('acknowledged');
    expect(await card.locator('.triage-record').textContent()).toMatch(/acknowledged by api-key:key_\w+ at .* — “replayed from a laptop/);
    await shoot('anomalies-acknowledged');
    // …and on the audit trail, as an event with who and why.
    await page.goto(`/console/#/search?type=AnomalyAcknowledged`);
    const row = page.locator('table.audit tbody tr').filter({ hasText: 'user confirmed theft' });
    await row.waitFor();
    expect(await row.textContent()).toContain('Anomaly acknowledged by api-key:');
  });

  it('shows a tampered event as a broken hash chain', async () => {
    const sql = ledger.runtime.readModels.sql; // the events' own database on PostgreSQL
    const [victim] = await sql.query<{ position: string; metadata: unknown }>(
      `select position, metadata from tl_events where stream_id = $1 and revision = 1`,
      [`family-${incident}`],
    );
    await sql.query(`update tl_events set metadata = jsonb_set(metadata, '{context,ip}', '"10.66.66.66"') where position = $1`, [victim.position]);
    try {
      await page.goto(`/console/#/family/${incident}`);
      const verdict = page.getByTestId('verification');
      await verdict.waitFor();
      expect(await verdict.getAttribute('class')).toContain('verify-broken');
      expect(await page.locator('ul.problems').textContent()).toMatch(/revision 1 .*altered/);
    } finally {
      await sql.query('update tl_events set metadata = $2::jsonb where position = $1', [victim.position, JSON.stringify(victim.metadata)]);
    }
  });

  it('signs out when the key is revoked meanwhile', async () => {
    expect((await call(ledger.baseUrl, ADMIN_TOKEN, 'POST', `/v1/api-keys/${responder.keyId}/revoke`)).status).toBe(200);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByText('The key is no longer accepted; sign in again.').waitFor();
    expect(await page.getByLabel('API key').inputValue()).toBe('');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  });

  it('ran without a CSP violation or a script error', () => {
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
}));
