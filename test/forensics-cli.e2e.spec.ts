import { Writable } from 'node:stream';
import pino from 'pino';
import { formatRefreshToken, parseRefreshToken } from '@token-ledger/domain';
import { openEventStore } from '@token-ledger/event-store';
import { loadConfig, openRuntime, type LedgerConfig, type LedgerRuntime } from '../apps/token-ledger/src';
import * as replay from '../apps/cli/src/commands/replay';
import * as verify from '../apps/cli/src/commands/verify';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** `token-ledger replay` and `verify` against the embedded store of a stopped server (the real openRuntime path). */
describe('token-ledger replay / verify (CLI) on the embedded store', () => {
  let ledger: Ledger;
  let config: LedgerConfig;
  const logger = pino({ level: 'silent' });
  let famA: string;
  let famB: string;
  let leakAt: string;

  /**
   * While set, CLI runs get this already opened store instead of opening their own: each open of an
   * embedded store costs a PGlite start. The tests of the opening path itself run without it.
   */
  let shared: LedgerRuntime | undefined;

  async function cli(command: typeof replay | typeof verify, args: string[], ttyErr = false): Promise<{ code: number; out: string; err: string }> {
    const stdout = new Capture();
    const stderr = new Capture(ttyErr);
    const openStore = shared ? async () => ({ store: shared!.store, close: async () => undefined }) : undefined;
    const code = await command.run(args, config, logger, { stdout, stderr, openStore });
    return { code, out: stdout.text, err: stderr.text };
  }

  /** The store as the tests edit it: the shared one (an embedded store allows one opener per process). */
  const sqlOf = () => shared!.store.capabilities.sql!;

  beforeAll(async () => {
    // Anomaly engine off: its AnomalyDetected (for the reuse below) would land at a time of its own.
    ledger = await startLedger({ env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'web', reuseGraceSeconds: 0 });
    const a = await api.issue({ subject: 'alice', clientId: 'web', scope: 'api:read', context: { ip: '203.0.113.7', userAgent: 'phone' } });
    const b = await api.issue({ subject: 'alice', clientId: 'web', scope: 'api:read', context: { ip: '192.0.2.10' } });
    famA = a.family_id;
    famB = b.family_id;
    const a2 = (await api.refresh(a.refresh_token, client)).body.refresh_token;
    await new Promise((r) => setTimeout(r, 5));
    leakAt = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await api.refresh(b.refresh_token, client);
    await api.refresh(formatRefreshToken({ ...parseRefreshToken(a2)!, secret: Buffer.alloc(32, 3) }), client); // forged: rejected
    await api.refresh(a.refresh_token, client); // reuse: family A revoked
    await ledger.stop(); // the embedded store allows one process per data directory
    config = loadConfig({ LEDGER_DATA_DIR: ledger.dataDir, LOG_LEVEL: 'silent' });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('replay --family --format ndjson: one SPEC §3 event per line, in order', async () => {
    const { code, out, err } = await cli(replay, ['--family', famA, '--format', 'ndjson']);
    expect(err).toBe('');
    expect(code).toBe(0);
    const events = out.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(['TokenFamilyIssued', 'TokenRotated', 'RefreshRejected', 'TokenReuseDetected', 'TokenFamilyRevoked']);
    expect(events.every((e) => e.familyId === famA && typeof e.position === 'number' && e.metadata.hash)).toBe(true);
  });

  describe('every run on one opened store', () => {
    beforeAll(async () => {
      shared = await openRuntime(config, logger);
    });
    afterAll(async () => {
      await shared?.close();
      shared = undefined;
    });

    it('replay --family --at --format json: the events up to the instant and the state then', async () => {
      const { code, out } = await cli(replay, ['--family', famA, '--at', leakAt, '--format', 'json']);
      expect(code).toBe(0);
      const doc = JSON.parse(out);
      expect(doc).toMatchObject({ familyId: famA, at: leakAt, state: { status: 'active', generation: 2, lastContext: { ip: '127.0.0.1' } } });
      expect(doc.events.map((e: { type: string }) => e.type)).toEqual(['TokenFamilyIssued', 'TokenRotated']);
      const now = JSON.parse((await cli(replay, ['--family', famA, '--format', 'json'])).out);
      expect(now.state).toMatchObject({ status: 'revoked', revokedReason: 'reuse_detected' });
    });

    it('replay --subject --from/--to: every family of the subject merged in global order, and their states', async () => {
      const { code, out } = await cli(replay, ['--subject', 'alice', '--from', leakAt, '--format', 'json']);
      expect(code).toBe(0);
      const doc = JSON.parse(out);
      const positions = doc.events.map((e: { position: number }) => e.position);
      expect(positions).toEqual([...positions].sort((x: number, y: number) => x - y));
      expect(doc.events.map((e: { type: string; familyId: string }) => `${e.type} ${e.familyId === famA ? 'A' : 'B'}`)).toEqual([
        'TokenRotated B',
        'RefreshRejected A',
        'TokenReuseDetected A',
        'TokenFamilyRevoked A',
      ]);
      expect(doc.families.map((f: { familyId: string; status: string }) => [f.familyId, f.status])).toEqual([
        [famA, 'revoked'],
        [famB, 'active'],
      ]);
      const before = JSON.parse((await cli(replay, ['--subject', 'alice', '--to', leakAt, '--format', 'ndjson'])).out.split('\n')[0]);
      expect(before.type).toBe('FamilyLinkedToSubject');
    });

    it('replay --format table: a readable line per event with IPs, then the state', async () => {
      const { code, out } = await cli(replay, ['--family', famA]);
      expect(code).toBe(0);
      expect(out).toMatch(/^# replay familyId=fam_/);
      expect(out).toContain('POSITION');
      expect(out).toMatch(/TokenFamilyIssued\s+fam_\S+\s+1\s+203\.0\.113\.7\s+admin/);
      expect(out).toContain('reason=bad_secret');
      expect(out).toMatch(/status\s+revoked/);
      expect(out).toMatch(/# 5 event\(s\)/);
    });

    it('replay --all --format ndjson exports every event; --progress draws on stderr', async () => {
      const { code, out, err } = await cli(replay, ['--all', '--format', 'ndjson', '--progress']);
      expect(code).toBe(0);
      const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(10); // client, 2 links, family A ×5, family B ×2
      expect(lines.map((e) => e.position)).toEqual([...lines.map((e) => e.position)].sort((x, y) => x - y));
      expect(err).toMatch(/replay .*events\/s/);
      const tty = await cli(replay, ['--all', '--format', 'ndjson'], true);
      expect(tty.err).toContain('\r');
    });

    it('usage errors exit 2 with the help; unknown family exits 1', async () => {
      for (const args of [[], ['--family', famA, '--subject', 'alice'], ['--family', famA, '--at', 'yesterday'], ['--all', '--format', 'xml'], ['--nope'], ['--all', 'extra']]) {
        const { code, err } = await cli(replay, args);
        expect({ args, code }).toEqual({ args, code: 2 });
        expect(err).toContain('Usage: token-ledger replay');
      }
      expect((await cli(replay, ['--family', 'fam_00000000000000000000000000'])).code).toBe(1);
      const help = await cli(replay, ['--help']);
      expect(help).toMatchObject({ code: 0 });
      expect(help.out).toBe(replay.HELP);
      expect((await cli(verify, ['--family', famA, '--all'])).code).toBe(2);
      expect((await cli(verify, ['--format', 'yaml'])).code).toBe(2);
    });

    it('verify: 1 when a snapshot was edited to un-revoke a family although every event is intact', async () => {
      const sql = sqlOf();
      const [before] = await sql.query<{ snapshot: { state: { status: string } }; snapshot_revision: number }>('select snapshot, snapshot_revision from tl_streams where stream_id = $1', [`family-${famA}`]);
      expect(before.snapshot.state.status).toBe('revoked'); // by the reuse in beforeAll
      await sql.query(`update tl_streams set snapshot = jsonb_set(snapshot::jsonb, '{state,status}', '"active"') where stream_id = $1`, [`family-${famA}`]);
      try {
        const tampered = await cli(verify, ['--family', famA]);
        expect(tampered.code).toBe(1);
        expect(tampered.out).toContain(`first bad spot: snapshot mismatch at family-${famA} revision ${before.snapshot_revision}`);
        expect((await cli(verify, ['--all'])).code).toBe(1);
      } finally {
        await sql.query('update tl_streams set snapshot = $2::jsonb where stream_id = $1', [`family-${famA}`, JSON.stringify(before.snapshot)]);
      }
    });

    it('verify: 0 when intact, 1 naming the first bad spot after a row was edited', async () => {
      const clean = await cli(verify, ['--all']);
      expect(clean.code).toBe(0);
      expect(clean.out).toMatch(/verify all streams: OK — hash chain intact, \d+ event\(s\) in 4 stream\(s\)/);
      expect((await cli(verify, ['--family', famA])).code).toBe(0);

      const sql = sqlOf();
      const [victim] = await sql.query<{ position: number }>(`select position from tl_events where stream_id = $1 and revision = 1`, [`family-${famA}`]);
      await sql.query(`update tl_events set data = jsonb_set(data, '{context,ip}', '"198.51.100.1"') where position = $1`, [victim.position]);

      const tampered = await cli(verify, []);
      expect(tampered.code).toBe(1);
      expect(tampered.out).toContain(`TAMPERED`);
      expect(tampered.out).toContain(`first bad spot: altered at family-${famA} revision 1 (position ${victim.position})`);
      const json = await cli(verify, ['--family', famA, '--format', 'json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.out).firstProblem).toMatchObject({ kind: 'altered', streamId: `family-${famA}`, revision: 1, position: victim.position });
      expect((await cli(verify, ['--family', famB])).code).toBe(0);
      expect((await cli(verify, ['--family', 'fam_00000000000000000000000000'])).code).toBe(1);
    });
  });

  it('verify exits 3, not 1, when the store cannot be opened (the embedded store is in use)', async () => {
    const holder = await openEventStore({ store: 'embedded', dataDir: ledger.dataDir });
    try {
      const { code, err } = await cli(verify, ['--all']);
      expect(code).toBe(3);
      expect(err).toContain('cannot open the store');
    } finally {
      await holder.close();
    }
  });

  it('replay stops quietly (exit 0) when the reader has gone away (| head)', async () => {
    const gone = new Capture();
    gone.destroy(); // a closed pipe
    expect(await replay.run(['--all', '--format', 'ndjson'], config, logger, { stdout: gone, stderr: new Capture() })).toBe(0);
  });
});
