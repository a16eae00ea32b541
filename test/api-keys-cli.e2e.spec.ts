import { Writable } from 'node:stream';
import pino from 'pino';
import { API_KEY_PATTERN } from '@token-ledger/domain';
import { loadConfig } from '../apps/token-ledger/src';
import * as apiKeys from '../apps/cli/src/commands/api-keys';
import { call } from './support/api-keys-suite';
import { ADMIN_TOKEN, startLedger, type Ledger } from './support/ledger-harness';

jest.setTimeout(300_000);

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** `token-ledger api-keys create|list|revoke` against the embedded store of a stopped server, then the server honours them. */
describe('token-ledger api-keys (CLI) on the embedded store', () => {
  let ledger: Ledger | undefined;
  let dataDir: string;

  afterAll(async () => {
    await ledger?.destroy();
  });

  async function cli(sub: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
    const stdout = new Capture();
    const stderr = new Capture();
    const config = loadConfig({ LEDGER_DATA_DIR: dataDir, LEDGER_ADMIN_TOKEN: ADMIN_TOKEN, LEDGER_ANOMALY_ENGINE: 'off' });
    const code = await apiKeys.run(sub, args, config, pino({ level: 'silent' }), { stdout, stderr });
    return { code, out: stdout.text, err: stderr.text };
  }

  it('creates (key printed once), lists, revokes; usage errors exit 2, refusals 1; the server agrees', async () => {
    ledger = await startLedger({ env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    dataDir = ledger.dataDir;
    await ledger.stop();

    expect((await cli('create', ['--scopes', 'audit:read'])).code).toBe(2);
    expect((await cli('create', ['--name', 'x', '--scopes', 'audit:read', '--expires-at', 'soon'])).code).toBe(2);
    expect((await cli('revoke', [])).code).toBe(2);
    const badScope = await cli('create', ['--name', 'x', '--scopes', 'audit:read root']);
    expect(badScope.code).toBe(1);
    expect(badScope.err).toMatch(/root/);

    const kept = await cli('create', ['--name', 'orders-api', '--scopes', 'revocations:read audit:read']);
    expect(kept.code).toBe(0);
    const keptKey = kept.out.match(API_KEY_PATTERN)![0];
    const keptId = /created (key_\w+)/.exec(kept.out)![1];
    const gone = await cli('create', ['--name', 'to revoke', '--scopes', 'audit:read']);
    const goneKey = gone.out.match(API_KEY_PATTERN)![0];
    const goneId = /created (key_\w+)/.exec(gone.out)![1];

    const revoked = await cli('revoke', [goneId]);
    expect(revoked).toMatchObject({ code: 0, out: `revoked ${goneId}\n` });
    expect((await cli('revoke', [goneId])).out).toMatch(/already revoked/);
    expect((await cli('revoke', [`key_${'2'.repeat(26)}`])).code).toBe(1);

    const list = await cli('list', []);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(new RegExp(`${keptId}\\tactive\\trevocations:read audit:read\\torders-api`));
    expect(list.out).toMatch(new RegExp(`${goneId}\\trevoked`));
    expect(list.out).not.toContain(keptKey);

    ledger = await startLedger({ dataDir, env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    expect((await call(ledger.baseUrl, keptKey, 'GET', '/v1/audit?limit=1')).status).toBe(200);
    expect((await call(ledger.baseUrl, goneKey, 'GET', '/v1/audit?limit=1')).status).toBe(401);
    const audit = await call(ledger.baseUrl, ADMIN_TOKEN, 'GET', '/v1/audit?type=ApiKeyCreated');
    expect(audit.body.items.map((e: any) => e.metadata.actor)).toEqual(['cli', 'cli']);
  });
});
