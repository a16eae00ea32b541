import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig, type LedgerConfig } from '../../apps/token-ledger/src';
import * as backtest from '../../apps/cli/src/commands/backtest';
import { TEST_ADDRESSES as ip } from '../../libs/anomaly/src/geo/test-addresses';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';

jest.setTimeout(120_000);

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/**
 * `token-ledger backtest` over the history of a stopped embedded server (the real openRuntime path):
 * candidate rules show what would have fired, and nothing is written.
 */
describe('token-ledger backtest (CLI)', () => {
  let ledger: Ledger;
  let config: LedgerConfig;
  let dir: string;
  let travelling: string;
  let head: number;
  let middle: string;
  const logger = pino({ level: 'silent' });

  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await backtest.run(args, config, logger, { stdout, stderr });
    return { code, out: stdout.text, err: stderr.text };
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tl-backtest-'));
    // The live engine runs with travel rules off: history holds no anomaly of that kind.
    ledger = await startLedger({ env: { LEDGER_TRUST_PROXY: 'true', LEDGER_ANOMALY_ENGINE: 'off' } });
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'web' });
    const a = await api.issue({ subject: 'ann', clientId: 'web', scope: 'api:read', context: { ip: ip.berlin } });
    travelling = a.family_id;
    const refresh = (token: string, address: string) =>
      api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: token }, client, { 'x-forwarded-for': address });
    let token = (await refresh(a.refresh_token, ip.berlinNearby)).body.refresh_token;
    await new Promise((r) => setTimeout(r, 20));
    middle = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    token = (await refresh(token, ip.sydney)).body.refresh_token; // Berlin → Sydney in milliseconds
    await refresh(token, ip.sydney);
    head = await ledger.store.headPosition();
    await ledger.stop();
    config = loadConfig({ LEDGER_DATA_DIR: ledger.dataDir, LOG_LEVEL: 'silent' });
  });

  afterAll(async () => {
    await ledger?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const rulesFile = (rules: unknown) => {
    const file = path.join(dir, `rules-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(rules));
    return file;
  };

  it('prints what candidate rules would have fired (table), and writes nothing', async () => {
    const { code, out } = await cli(['--rules', rulesFile({ rules: { geo_mismatch: { enabled: false } } })]);
    expect(code).toBe(0);
    expect(out).toMatch(/impossible_travel\s+high\s+alert/);
    expect(out).toContain(travelling);
    expect(out).toMatch(/Berlin.* → Sydney, 16,\d{3} km/);
    expect(out).not.toContain('geo_mismatch');
    expect(out).toMatch(/1 anomaly\(ies\) over \d+ event\(s\): impossible_travel 1/);
    const { openEventStore } = await import('@token-ledger/event-store');
    const store = await openEventStore({ store: 'embedded', dataDir: ledger.dataDir });
    try {
      expect(await store.headPosition()).toBe(head); // no side effects
    } finally {
      await store.close();
    }
  });

  it('--format json with thresholds from the file; --from limits the history', async () => {
    const file = rulesFile({ rules: { refresh_burst: { perFamily: { max: 1, windowSeconds: 60 }, action: 'revoke_subject' } } });
    const all = JSON.parse((await cli(['--rules', file, '--format', 'json'])).out);
    expect(all.summary.byRule).toEqual({ impossible_travel: 1, geo_mismatch: 1, refresh_burst: 1 });
    expect(all.detections.find((d: any) => d.rule === 'refresh_burst')).toMatchObject({ action: 'revoke_subject', familyId: travelling, evidence: { count: 2, max: 1 } });
    const later = JSON.parse((await cli(['--rules', file, '--format', 'json', '--from', middle])).out);
    // From the middle on, the Berlin uses are not in view: no travel, and only 2 refreshes (one burst).
    expect(later.summary.byRule).toEqual({ refresh_burst: 1 });
  });

  it('a bad rules file or bad arguments exit 2 with the reason; --help exits 0', async () => {
    const bad = await cli(['--rules', rulesFile({ rules: { impossible_travel: { maxSpeedKmh: 'fast' } } })]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('rules.impossible_travel.maxSpeedKmh');
    expect((await cli([])).code).toBe(2);
    expect((await cli(['--rules', 'x.json', '--from', 'yesterday'])).err).toContain('--from must be an ISO-8601 instant');
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: token-ledger backtest');
  });
});
