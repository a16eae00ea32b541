import fc from 'fast-check';
import { openLedgerStore, type LedgerInstance, type LedgerStoreUnderTest } from './support/ledger-instance';
import { activeInView, familyEvents, familyState, issue, registerClient, revokeSubject, rotate, subjectHistory } from './support/ledger-commands';
import { ScheduledCalls } from './support/scheduled-store';
import type { RotatedTokens } from '../apps/token-ledger/src/ledger/commands/rotate-token.command';

/**
 * IssueToken, RevokeSubject, the family limit and rotations, run concurrently through the real
 * handlers and AggregateRepository, with fast-check's scheduler choosing the order of every store
 * call (and every read of the family view). Each run gets a fresh process (handlers, repositories)
 * on one embedded store, and its own client and subject. The invariants are exact:
 *
 * - grace 0: of several concurrent presentations of the head exactly one rotates, the others are
 *   reuse, and the family ends revoked — the winner's successor with it;
 * - with a grace window: all of them get the one successor (one TokenRotated, the same token);
 * - every login answered before RevokeSubject returned is revoked, and so is every family linked
 *   before SubjectRevoked;
 * - once the view has caught up, at most maxFamiliesPerSubject families are active.
 */
const MAX = 2;
let ledger: LedgerStoreUnderTest;
let setup: LedgerInstance;
let run = 0;
let paused = false;

async function resumeView(): Promise<void> {
  if (!paused) return;
  paused = false;
  await ledger.runtime.readModels.runner.start();
}

beforeAll(async () => {
  ledger = await openLedgerStore({ kind: 'embedded' });
  setup = await ledger.start();
});
afterAll(() => ledger?.close());

/** A fresh process whose store calls `s` orders; `work` is awaited through the scheduler. */
async function scheduled<T>(s: fc.Scheduler, work: (p: LedgerInstance) => Promise<T>[], onRelease?: (n: number) => void): Promise<PromiseSettledResult<T>[]> {
  const calls = new ScheduledCalls(s, onRelease);
  const p = await ledger.start({ wrap: (store) => calls.store(store), wrapSql: (sql) => calls.sql(sql) });
  try {
    return await s.waitFor(Promise.allSettled(work(p)), calls.act);
  } finally {
    // Stopping flushes the tallied rejections, through the scheduled store too.
    await s.waitFor(p.stop(), calls.act);
  }
}

const outcome = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { kind?: string }).kind ?? String(r.reason));

describe('concurrent rotations of the head', () => {
  it('grace 0: exactly one winner; the others are reuse and the family (the winner successor too) ends revoked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 4 }), async (s, presentations) => {
        const client = `rot0-${++run}`;
        await registerClient(setup, client, { reuseGraceSeconds: 0 });
        const issued = await issue(setup, `u-${run}`, client);
        const results = await scheduled(s, (p) => Array.from({ length: presentations }, () => rotate(p, issued.refreshToken, client)));
        const winners = results.filter((r): r is PromiseFulfilledResult<RotatedTokens> => r.status === 'fulfilled');
        expect(results.map(outcome).sort()).toEqual([...Array(presentations - 1).fill('invalid_grant'), 'ok'].sort());
        const state = await familyState(setup, issued.familyId);
        expect([state.status, state.generation]).toEqual(['revoked', 2]);
        expect((await familyEvents(ledger.store, issued.familyId)).filter((e) => e.type === 'TokenFamilyRevoked')).toEqual([{ type: 'TokenFamilyRevoked', reason: 'reuse_detected' }]);
        await expect(rotate(setup, winners[0].value.refreshToken, client)).rejects.toMatchObject({ kind: 'invalid_grant' });
      }),
      { numRuns: 20 },
    );
  });

  it('with grace: every presentation gets the one successor', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 4 }), async (s, presentations) => {
        const client = `rotg-${++run}`;
        await registerClient(setup, client, { reuseGraceSeconds: 60 });
        const issued = await issue(setup, `u-${run}`, client);
        const results = await scheduled(s, (p) => Array.from({ length: presentations }, () => rotate(p, issued.refreshToken, client)));
        expect(results.map(outcome)).toEqual(Array(presentations).fill('ok'));
        const tokens = new Set(results.map((r) => (r as PromiseFulfilledResult<RotatedTokens>).value.refreshToken));
        expect(tokens.size).toBe(1);
        const events = (await familyEvents(ledger.store, issued.familyId)).map((e) => e.type);
        expect(events.filter((t) => t === 'TokenRotated')).toHaveLength(1);
        expect(events.filter((t) => t === 'TokenRotationReplayed')).toHaveLength(presentations - 1);
        const state = await familyState(setup, issued.familyId);
        expect([state.status, state.generation]).toEqual(['active', 2]);
        expect((await rotate(setup, [...tokens][0], client)).refreshToken).toBeDefined();
      }),
      { numRuns: 20 },
    );
  });
});

describe('IssueToken × RevokeSubject × the family limit × rotations', () => {
  it('logins answered before the revocation returned are revoked; no family linked before it survives; the limit holds', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 }),
        fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
        async (s, logins, withRevocation, rotations, viewResumesAt) => {
          const client = `mix-${++run}`;
          const subject = `s-${run}`;
          await registerClient(setup, client, { maxFamiliesPerSubject: MAX, reuseGraceSeconds: 0 });
          const existing = await issue(setup, subject, client);
          await ledger.caughtUp();

          // The family view stops, and resumes when the run has made the number of store calls fc chose.
          const runner = ledger.runtime.readModels.runner;
          const viewLags = viewResumesAt !== undefined;
          if (viewLags) {
            await runner.stop();
            paused = true;
            // Should the run block on the view before its n-th call (IssueToken waits for it), it resumes anyway.
            setTimeout(() => void resumeView(), 300);
          }
          const answered: string[] = [];
          let revocation: { answeredAfter: number } | undefined;
          const results = await scheduled<unknown>(s, (p) => [
            ...Array.from({ length: logins }, () => issue(p, subject, client).then((r) => (answered.push(r.familyId), r))),
            ...(withRevocation ? [revokeSubject(p, subject).then((r) => ((revocation = { answeredAfter: answered.length }), r))] : []),
            ...Array.from({ length: rotations }, () => rotate(p, existing.refreshToken, client)),
          ], (n) => n === viewResumesAt && void resumeView());
          await resumeView();
          const outcomes = results.map(outcome);
          // Every login and the revocation succeed; rotations lose only to each other or to a revocation.
          expect(outcomes.slice(0, logins + (withRevocation ? 1 : 0))).toEqual(Array(logins + (withRevocation ? 1 : 0)).fill('ok'));
          const rotated = outcomes.slice(logins + (withRevocation ? 1 : 0)).filter((o) => o === 'ok').length;
          expect(rotated).toBeLessThanOrEqual(1);
          if (rotations >= 2) expect((await familyState(setup, existing.familyId)).status).toBe('revoked');

          const history = await subjectHistory(ledger.store, subject);
          if (withRevocation) {
            const revokedAt = history.find((e) => e.type === 'SubjectRevoked')!.position;
            const linkedBefore = history.filter((e) => e.type === 'FamilyLinkedToSubject' && e.position < revokedAt).map((e) => e.familyId!);
            const mustBeRevoked = new Set([...linkedBefore, ...answered.slice(0, revocation!.answeredAfter), existing.familyId]);
            for (const id of mustBeRevoked) expect({ id, status: (await familyState(setup, id)).status }).toEqual({ id, status: 'revoked' });
            expect(history.map((e) => e.type).filter((t) => t !== 'FamilyLinkedToSubject')).toEqual(['SubjectRevoked', 'SubjectRevocationCompleted']);
          }

          await ledger.caughtUp();
          const active = await activeInView(ledger.runtime.readModels.sql, subject, client);
          expect(active.length).toBeLessThanOrEqual(MAX);
          // The command side agrees with the view.
          const activeInStore: string[] = [];
          for (const e of history.filter((h) => h.type === 'FamilyLinkedToSubject')) {
            if ((await familyState(setup, e.familyId!)).status === 'active') activeInStore.push(e.familyId!);
          }
          expect(activeInStore.sort()).toEqual([...active].sort());
        },
      ).afterEach(resumeView),
      { numRuns: 50 },
    );
  });
});
