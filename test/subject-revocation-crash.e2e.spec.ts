import { familyStreamId, subjectStreamId } from '@token-ledger/envelope';
import { describeWithBackend } from './backends';
import { FailingAppends } from './support/failing-appends';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './support/ledger-harness';

/**
 * RevokeSubject interrupted at every kind of append — its SubjectRevoked, a family's revocation, its
 * completion; the write lost, or written with its acknowledgement lost (a database blip) — is
 * finished by a retry, which answers with the families it revoked, or without any retry by the
 * reconciler `serve` runs. Either way every family ends revoked.
 */
const N = 8;
/** Appends of one RevokeSubject over N live families: 1 SubjectRevoked, N revocations, 1 completion. */
const CASES: Array<[k: number, mode: 'lost' | 'ackLost']> = [
  [1, 'lost'],
  [1, 'ackLost'],
  [2, 'lost'],
  [2, 'ackLost'],
  [Math.ceil(N / 2), 'lost'],
  [N + 1, 'ackLost'],
  [N + 2, 'lost'],
  [N + 2, 'ackLost'],
];

interface Family {
  family_id: string;
  refresh_token: string;
}

function crashSuite(name: string, store: () => StoreKind): void {
  describe(`RevokeSubject interrupted by a failed append (${name})`, () => {
    const failing = new FailingAppends();
    let ledger: Ledger;
    let api: LedgerClient;
    let client: { clientId: string; secret: string };

    afterEach(() => failing.disarm());

    async function setUp(env: Record<string, string>): Promise<void> {
      ledger = await startLedger({ store: store(), env: { LEDGER_ANOMALY_ENGINE: 'off', ...env }, wrapStore: (s) => failing.wrap(s) });
      api = new LedgerClient(ledger.baseUrl);
      client = await api.registerClient({ clientId: 'crash', reuseGraceSeconds: 0 });
    }

    async function families(subject: string): Promise<Family[]> {
      const out: Family[] = [];
      for (let i = 0; i < N; i++) out.push(await api.issue({ subject, clientId: client.clientId, scope: 'api:read' }));
      return out;
    }

    /** Interrupts a RevokeSubject at its k-th append; returns the families it revoked before that. */
    async function interrupted(subject: string, fams: Family[], k: number, mode: 'lost' | 'ackLost'): Promise<Set<string>> {
      failing.arm(k, mode);
      const first = await api.admin('POST', `/v1/subjects/${subject}/revoke`, { reason: 'password_change' });
      expect(failing.fired).toBe(true);
      expect(first.status).toBe(503);
      const written = new Set(failing.appendedStreams);
      return new Set(fams.filter((f) => written.has(familyStreamId(f.family_id))).map((f) => f.family_id));
    }

    async function subjectEvents(subject: string) {
      return (await ledger.store.readStream(subjectStreamId(subject))).map((e) => ({ type: e.type, data: e.data as { reason: string }, actor: e.metadata.actor }));
    }

    async function expectAllDead(fams: Family[]): Promise<void> {
      for (const f of fams) expect({ family: f.family_id, error: (await api.refresh(f.refresh_token, client)).body.error }).toEqual({ family: f.family_id, error: 'invalid_grant' });
    }

    describe('a retry finishes it (reconciler held off by its grace)', () => {
      beforeAll(() => setUp({ LEDGER_RECONCILE_GRACE_SECONDS: '3600' }));
      afterAll(() => ledger?.destroy());

      it.each(CASES)('append %i %s: the retry answers with the families it revoked, every family ends revoked', async (k, mode) => {
        const subject = `retry-${k}-${mode}`;
        const fams = await families(subject);
        const revokedBefore = await interrupted(subject, fams, k, mode);
        const before = (await subjectEvents(subject)).map((e) => e.type);
        const started = before.includes('SubjectRevoked');
        const completed = before.includes('SubjectRevocationCompleted');
        expect([started, completed]).toEqual([!(k === 1 && mode === 'lost'), k === N + 2 && mode === 'ackLost']);

        const retry = await api.admin('POST', `/v1/subjects/${subject}/revoke`, { reason: 'admin' });
        expect(retry.status).toBe(200);
        expect([...retry.body.revokedFamilies].sort()).toEqual(fams.map((f) => f.family_id).filter((id) => !revokedBefore.has(id)).sort());
        await expectAllDead(fams);
        // The retry continued the pending revocation, under its reason: no second SubjectRevoked —
        // unless the first had completed (only its answer was lost), when the retry is a new one.
        const events = (await subjectEvents(subject)).filter((e) => e.type !== 'FamilyLinkedToSubject');
        const reason = started ? 'password_change' : 'admin';
        expect(events.map((e) => [e.type, e.data.reason])).toEqual([
          ['SubjectRevoked', reason],
          ['SubjectRevocationCompleted', reason],
          ...(completed ? [['SubjectRevoked', 'admin'], ['SubjectRevocationCompleted', 'admin']] : []),
        ]);
        for (const f of fams) {
          const revoked = (await ledger.store.readStream(familyStreamId(f.family_id))).filter((e) => e.type === 'TokenFamilyRevoked');
          expect(revoked.map((e) => (e.data as { reason: string }).reason)).toEqual([reason]);
        }
      });
    });

    describe('without a retry, the reconciler finishes it', () => {
      beforeAll(() => setUp({ LEDGER_RECONCILE_GRACE_SECONDS: '0', LEDGER_RECONCILE_INTERVAL_SECONDS: '1' }));
      afterAll(() => ledger?.destroy());

      // Not the two where nothing is left pending: no SubjectRevoked written, or the completion written.
      it.each(CASES.filter(([k, mode]) => !(k === 1 && mode === 'lost') && !(k === N + 2 && mode === 'ackLost')))('append %i %s: every family ends revoked, nobody retrying', async (k, mode) => {
        const subject = `reconciled-${k}-${mode}`;
        const fams = await families(subject);
        await interrupted(subject, fams, k, mode);
        const deadline = Date.now() + 10_000;
        while (!(await subjectEvents(subject)).some((e) => e.type === 'SubjectRevocationCompleted')) {
          if (Date.now() > deadline) throw new Error(`the revocation of ${subject} was not completed within 10 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await expectAllDead(fams);
        const completion = (await subjectEvents(subject)).find((e) => e.type === 'SubjectRevocationCompleted')!;
        expect(completion.actor).toBe('subject-revocation-reconciler');
      });

      it('a revocation that never got written is not invented: its families stay alive', async () => {
        const fams = await families('never-started');
        await interrupted('never-started', fams, 1, 'lost');
        await new Promise((r) => setTimeout(r, 2500)); // two reconciler passes
        expect((await subjectEvents('never-started')).map((e) => e.type)).not.toContain('SubjectRevoked');
        expect((await api.refresh(fams[0].refresh_token, client)).status).toBe(200);
      });
    });
  });
}

crashSuite('embedded store', () => ({ kind: 'embedded' }));
describeWithBackend('postgres', 'on PostgreSQL', (url) => crashSuite('PostgreSQL', () => ({ kind: 'postgres', url })));
