import { describeWithBackend } from './backends';
import { CrashingStore, ProcessCrash } from './support/crashing-store';
import { openLedgerStore, type LedgerInstance, type LedgerStoreUnderTest, type StoreUnderTest } from './support/ledger-instance';
import { activeInView, familyEvents, familyState, issue, META, registerClient, revokeSubject, rotate, subjectHistory } from './support/ledger-commands';
import { DisableClientCommand } from '../apps/token-ledger/src/ledger/commands/disable-client.command';

/**
 * Every multi-step command killed at each of its appends — the k-th append not written ('before')
 * or written with the process dying before it hears so ('after') — for every k up to the number of
 * appends the command makes; then a new process on the same store (fresh handlers), which runs the
 * reconciler or retries, and the command's promise is checked on what the store holds:
 *
 * - RevokeSubject: every family linked before SubjectRevoked ends revoked, the linked-but-unissued
 *   one included, and the revocation completes;
 * - IssueToken: a family linked but never issued is not usable and not counted; a retried login
 *   works; once the retry has run, at most maxFamiliesPerSubject families are active;
 * - DisableClient with revokeFamilies: the families of a disabled client are all revoked by a retry,
 *   and the client cannot log anyone in meanwhile.
 *
 * (RecordRejections, RevokeFamily, RotateToken and the client and API-key commands make one append
 * each: nothing to cut in the middle. The Kafka relay has its own test, relay-crash.int.spec.ts.)
 */
const MODES = ['before', 'after'] as const;
type Mode = (typeof MODES)[number];

function cases(appends: number): [number, Mode][] {
  return Array.from({ length: appends }, (_, i) => MODES.map((m): [number, Mode] => [i + 1, m])).flat();
}

/** Runs `work` in a process that dies at its k-th append; the crash must happen. */
async function crashing(ledger: LedgerStoreUnderTest, k: number, mode: Mode, work: (p: LedgerInstance) => Promise<unknown>): Promise<void> {
  const crash = new CrashingStore({ k, mode });
  const p = await ledger.start({ wrap: (s) => crash.wrap(s) });
  try {
    await expect(work(p)).rejects.toBeInstanceOf(ProcessCrash);
  } finally {
    await p.stop();
  }
  expect(crash.crashed).toBe(true);
}

/** How many appends `work` makes, run without a crash. */
async function appendsOf(ledger: LedgerStoreUnderTest, work: (p: LedgerInstance) => Promise<unknown>): Promise<number> {
  const counter = new CrashingStore();
  const p = await ledger.start({ wrap: (s) => counter.wrap(s) });
  await work(p);
  await p.stop();
  return counter.appends;
}

let seq = 0;
const unique = (what: string) => `${what}-${++seq}-${Date.now().toString(36)}`;

function revokeSubjectSuite(opened: () => LedgerStoreUnderTest, opts: { only?: (k: number, mode: Mode) => boolean; retries?: boolean } = {}): void {
  const only = opts.only;
  describe('RevokeSubject', () => {
    let ledger: LedgerStoreUnderTest;
    let setup: LedgerInstance;
    const client = unique('rs-client');
    beforeAll(async () => {
      ledger = opened();
      setup = await ledger.start();
      await registerClient(setup, client, { maxFamiliesPerSubject: 100 });
    });

    /** Two issued families and one linked whose IssueToken died right after the link. */
    async function subjectWithFamilies(): Promise<{ subject: string; tokens: string[] }> {
      const subject = unique('subject');
      const tokens: string[] = [];
      for (let i = 0; i < 2; i++) tokens.push((await issue(setup, subject, client)).refreshToken);
      await crashing(ledger, 1, 'after', (p) => issue(p, subject, client));
      return { subject, tokens };
    }

    // 1 SubjectRevoked + 3 revocations (the unissued family pre-emptively) + 1 completion.
    const APPENDS = 5;
    it('makes the appends the cases below cut', async () => {
      const { subject } = await subjectWithFamilies();
      expect(await appendsOf(ledger, (p) => revokeSubject(p, subject))).toBe(APPENDS);
    });

    async function expectPromiseKept(p: LedgerInstance, subject: string, tokens: string[], reason: string): Promise<void> {
      const history = await subjectHistory(ledger.store, subject);
      const revokedAt = history.find((e) => e.type === 'SubjectRevoked')!.position;
      const linkedBefore = history.filter((e) => e.type === 'FamilyLinkedToSubject' && e.position < revokedAt).map((e) => e.familyId!);
      expect(linkedBefore).toHaveLength(3);
      for (const familyId of linkedBefore) {
        expect({ familyId, status: (await familyState(p, familyId)).status }).toEqual({ familyId, status: 'revoked' });
        expect((await familyEvents(ledger.store, familyId)).filter((e) => e.type === 'TokenFamilyRevoked')).toEqual([{ type: 'TokenFamilyRevoked', reason }]);
      }
      for (const token of tokens) await expect(rotate(p, token, client)).rejects.toMatchObject({ kind: 'invalid_grant' });
      expect(history.map((e) => e.type).filter((t) => t !== 'FamilyLinkedToSubject')).toEqual(['SubjectRevoked', 'SubjectRevocationCompleted']);
    }

    it.each(cases(APPENDS).filter(([k, m]) => only?.(k, m) ?? true))('killed at append %i (%s), the reconciler of the next process finishes it', async (k, mode) => {
      const { subject, tokens } = await subjectWithFamilies();
      await crashing(ledger, k, mode, (p) => revokeSubject(p, subject, 'password_change'));
      const next = await ledger.start();
      await ledger.caughtUp();
      const started = (await subjectHistory(ledger.store, subject)).some((e) => e.type === 'SubjectRevoked');
      expect(started).toBe(!(k === 1 && mode === 'before'));
      expect(await next.reconciler.reconcileOnce()).toBe(started && !(k === APPENDS && mode === 'after') ? 1 : 0);
      if (!started) {
        // Never written: nothing to finish, nothing invented — the families live until a retry.
        expect((await rotate(next, tokens[0], client)).refreshToken).toBeDefined();
        tokens.shift();
        await revokeSubject(next, subject, 'password_change');
      }
      await expectPromiseKept(next, subject, tokens, 'password_change');
      await next.stop();
    });

    // Retries are covered on the embedded store; PostgreSQL runs the reconciler's cases.
    if (opts.retries !== false)
      it.each(cases(APPENDS).filter(([k, m]) => only?.(k, m) ?? true))('killed at append %i (%s), a retry finishes it and names what it revoked', async (k, mode) => {
      const { subject, tokens } = await subjectWithFamilies();
      await crashing(ledger, k, mode, (p) => revokeSubject(p, subject, 'password_change'));
      const next = await ledger.start();
      const linked = (await subjectHistory(ledger.store, subject)).filter((e) => e.type === 'FamilyLinkedToSubject').map((e) => e.familyId!);
      const aliveBefore = [];
      for (const id of linked) if (['active', 'none'].includes((await familyState(next, id)).status)) aliveBefore.push(id);
      const completed = (await subjectHistory(ledger.store, subject)).some((e) => e.type === 'SubjectRevocationCompleted');
      const retry = await revokeSubject(next, subject, 'admin');
      if (completed) {
        // Only its answer was lost: the retry is a new revocation, with nothing left to revoke.
        expect(retry.revokedFamilies).toEqual([]);
        return next.stop();
      }
      expect([...retry.revokedFamilies].sort()).toEqual(aliveBefore.sort());
      await expectPromiseKept(next, subject, tokens, k === 1 && mode === 'before' ? 'admin' : 'password_change');
      await next.stop();
    });
  });
}

function issueTokenSuite(opened: () => LedgerStoreUnderTest): void {
  describe('IssueToken (link, issue, family limit)', () => {
    let ledger: LedgerStoreUnderTest;
    let setup: LedgerInstance;
    const client = unique('it-client');
    const MAX = 2;
    beforeAll(async () => {
      ledger = opened();
      setup = await ledger.start();
      await registerClient(setup, client, { maxFamiliesPerSubject: MAX });
    });

    async function subjectAtTheLimit(): Promise<string> {
      const subject = unique('subject');
      for (let i = 0; i < MAX; i++) await issue(setup, subject, client);
      await ledger.caughtUp();
      return subject;
    }

    // Link + issue + the oldest family revoked for the limit.
    const APPENDS = 3;
    it('makes the appends the cases below cut', async () => {
      const subject = await subjectAtTheLimit();
      expect(await appendsOf(ledger, (p) => issue(p, subject, client))).toBe(APPENDS);
    });

    it.each(cases(APPENDS))('killed at append %i (%s): nothing unissued is usable, a retry works, the limit holds', async (k, mode) => {
      const subject = await subjectAtTheLimit();
      await crashing(ledger, k, mode, (p) => issue(p, subject, client));
      const next = await ledger.start();
      const links = (await subjectHistory(ledger.store, subject)).filter((e) => e.type === 'FamilyLinkedToSubject');
      expect(links).toHaveLength(k === 1 && mode === 'before' ? MAX : MAX + 1);
      const crashed = links[MAX]?.familyId;
      const issued = crashed !== undefined && (await familyEvents(ledger.store, crashed)).some((e) => e.type === 'TokenFamilyIssued');
      expect(issued).toBe(k >= 3 || (k === 2 && mode === 'after'));
      await ledger.caughtUp();
      if (crashed !== undefined && !issued) {
        expect((await familyState(next, crashed)).status).toBe('none');
        expect(await activeInView(ledger.runtime.readModels.sql, subject, client)).not.toContain(crashed);
      }

      // The retry comes a minute later: a family linked but unissued for that long is a login that
      // died, not one under way, so it does not count towards the limit (which then holds exactly).
      const realNow = Date.now.bind(Date);
      const aMinuteLater = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
      let retry: Awaited<ReturnType<typeof issue>>;
      try {
        retry = await issue(next, subject, client);
        expect((await rotate(next, retry.refreshToken, client)).refreshToken).toBeDefined();
      } finally {
        aMinuteLater.mockRestore();
      }
      await ledger.caughtUp();
      const active = await activeInView(ledger.runtime.readModels.sql, subject, client);
      expect(active).toContain(retry.familyId);
      expect(active).toHaveLength(MAX);
      // The command side agrees with the view.
      const all = (await subjectHistory(ledger.store, subject)).filter((e) => e.type === 'FamilyLinkedToSubject').map((e) => e.familyId!);
      const activeInStore: string[] = [];
      for (const id of all) if ((await familyState(next, id)).status === 'active') activeInStore.push(id);
      expect(activeInStore.sort()).toEqual([...active].sort());

      // The unissued family's id is burnt: a later RevokeSubject revokes it pre-emptively.
      await revokeSubject(next, subject);
      for (const id of all) expect({ id, status: (await familyState(next, id)).status }).toEqual({ id, status: 'revoked' });
      await ledger.caughtUp();
      expect(await activeInView(ledger.runtime.readModels.sql, subject, client)).toEqual([]);
      await next.stop();
    });
  });
}

function disableClientSuite(opened: () => LedgerStoreUnderTest): void {
  describe('DisableClient with revokeFamilies', () => {
    let ledger: LedgerStoreUnderTest;
    let setup: LedgerInstance;
    beforeAll(async () => {
      ledger = opened();
      setup = await ledger.start();
    });

    async function clientWithFamilies(): Promise<{ client: string; families: string[] }> {
      const client = unique('dc-client');
      await registerClient(setup, client);
      const families = [];
      for (const subject of ['a', 'b', 'b']) families.push((await issue(setup, unique(subject), client)).familyId);
      return { client, families };
    }
    const disable = (p: LedgerInstance, client: string) => p.bus.execute(new DisableClientCommand(client, true, META));

    // ClientDisabled + one revocation per family.
    const APPENDS = 4;
    it('makes the appends the cases below cut', async () => {
      const { client } = await clientWithFamilies();
      expect(await appendsOf(ledger, (p) => disable(p, client))).toBe(APPENDS);
    });

    it.each(cases(APPENDS))('killed at append %i (%s): the client logs no one in, a retry revokes every family', async (k, mode) => {
      const { client, families } = await clientWithFamilies();
      await crashing(ledger, k, mode, (p) => disable(p, client));
      const next = await ledger.start();
      const disabled = !(k === 1 && mode === 'before');
      if (disabled) await expect(issue(next, unique('late'), client)).rejects.toMatchObject({ kind: 'invalid_request' });
      const alive = [];
      for (const id of families) if ((await familyState(next, id)).status === 'active') alive.push(id);
      const retry = await disable(next, client);
      expect(retry.changed).toBe(!disabled);
      expect([...retry.revokedFamilies].sort()).toEqual(alive.sort());
      for (const id of families) expect({ id, status: (await familyState(next, id)).status }).toEqual({ id, status: 'revoked' });
      await next.stop();
    });
  });
}

/** One store per file (opening PGlite is the slow part); every case has its own subject and client. */
function onStore(kind: () => StoreUnderTest, suites: (opened: () => LedgerStoreUnderTest) => void): void {
  let ledger: LedgerStoreUnderTest;
  beforeAll(async () => {
    ledger = await openLedgerStore(kind());
  });
  afterAll(() => ledger?.close());
  suites(() => ledger);
}

describe('crash injection (embedded store)', () => {
  onStore(
    () => ({ kind: 'embedded' }),
    (opened) => {
      revokeSubjectSuite(opened);
      issueTokenSuite(opened);
      disableClientSuite(opened);
    },
  );
});

// PostgreSQL for the representative command: its concurrent revocations really run side by side there.
describeWithBackend('postgres', 'crash injection on PostgreSQL', (url) => {
  onStore(
    () => ({ kind: 'postgres', url }),
    (opened) => revokeSubjectSuite(opened, { only: (k, mode) => mode === 'before' || k === 5, retries: false }),
  );
});
