import pino from 'pino';
import { loadConfig } from '../apps/token-ledger/src';
import { runClientLifecycle } from '../apps/cli/src/commands/clients-lifecycle';
import { clientLifecycleSuite } from './support/client-lifecycle-suite';
import { LedgerClient, startLedger } from './support/ledger-harness';

describe('client lifecycle over HTTP on the embedded (PGlite) store', () => {
  clientLifecycleSuite(() => ({ kind: 'embedded' }));
});

describe('token-ledger clients rotate-secret|disable|enable (CLI) on the embedded store', () => {
  it('rotates, disables and enables what the restarted server then honours', async () => {
    const first = await startLedger({ env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    const old = await new LedgerClient(first.baseUrl).registerClient({ clientId: 'cli-made' });
    await first.stop(); // the embedded store allows one process per data directory
    const config = loadConfig({ LEDGER_DATA_DIR: first.dataDir, LOG_LEVEL: 'silent' });
    const logger = pino({ level: 'silent' });
    const out: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => out.push(String(chunk)) > 0);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let secret: string;
    try {
      expect(await runClientLifecycle('clients rotate-secret', config, logger, { id: 'cli-made' })).toBe(0);
      secret = /client secret \(shown once\): (\S+)/.exec(out.join(''))![1];
      expect(await runClientLifecycle('clients disable', config, logger, { id: 'cli-made' })).toBe(0);
      expect(await runClientLifecycle('clients rotate-secret', config, logger, { id: 'cli-made', overlap: '-1' })).toBe(2);
    } finally {
      write.mockRestore();
      err.mockRestore();
    }
    const port = new URL(first.baseUrl).port;
    const second = await startLedger({ dataDir: first.dataDir, env: { PORT: port, LEDGER_ISSUER: first.baseUrl, LEDGER_ANOMALY_ENGINE: 'off' } });
    try {
      const api = new LedgerClient(second.baseUrl);
      const probe = (c: { clientId: string; secret: string }) => api.form('/oauth/revoke', { token: 'x' }, c);
      expect((await probe({ clientId: 'cli-made', secret })).status).toBe(401); // disabled
      await api.admin('POST', '/v1/clients/cli-made/enable');
      expect((await probe({ clientId: 'cli-made', secret })).status).toBe(200);
      expect((await probe(old)).status).toBe(401); // rotated away
    } finally {
      await second.destroy();
    }
  }, 180_000); // each CLI run opens the embedded store
});
