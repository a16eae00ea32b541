import fc from 'fast-check';
import { canonicalJson, SSF_PUSH, ssfSubjectIdKey, type SsfStreamEvent, type SsfStreamState } from '@token-ledger/domain';
import { ssfStreamAggregate, ssfStreamId, toDomainEvent } from '@token-ledger/envelope';
import {
  AddSsfSubjectCommand,
  CreateSsfStreamCommand,
  DeleteSsfStreamCommand,
  RemoveSsfSubjectCommand,
  RequestSsfVerificationCommand,
  UpdateSsfStreamCommand,
  type SsfStreamResult,
} from '../apps/token-ledger/src/ledger/commands/ssf-stream.command';
import { openLedgerStore, type LedgerInstance, type LedgerStoreUnderTest } from './support/ledger-instance';
import { ScheduledCalls } from './support/scheduled-store';

/**
 * The SSF stream commands run concurrently through the real handlers and AggregateRepository, with
 * fast-check's scheduler choosing the order of every store call. Whatever the order:
 * - each command that succeeded appended exactly its one event (none lost, none twice), and the
 *   stream's final state is the fold of those events (every answered subject add is there, unless
 *   removed or deleted after);
 * - of concurrent verification requests at most one is accepted (min_verification_interval);
 * - a deletion is final: nothing is appended after it, and what lost to it was told not_found.
 */
let ledger: LedgerStoreUnderTest;
let setup: LedgerInstance;
const meta = { actor: 'test' };

beforeAll(async () => {
  ledger = await openLedgerStore({ kind: 'embedded' });
  setup = await ledger.start();
});
afterAll(() => ledger?.close());

async function scheduled<T>(s: fc.Scheduler, work: (p: LedgerInstance) => Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
  const calls = new ScheduledCalls(s);
  const p = await ledger.start({ wrap: (store) => calls.store(store) });
  try {
    return await s.waitFor(Promise.allSettled(work(p)), calls.act);
  } finally {
    await s.waitFor(p.stop(), calls.act);
  }
}

const outcome = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { kind?: string; code?: string }).kind ?? (r.reason as { code?: string }).code ?? String(r.reason));

type Op = { kind: 'add'; i: number } | { kind: 'remove'; i: number } | { kind: 'patch'; i: number } | { kind: 'verify' } | { kind: 'delete' };
const EXPECTED_EVENT: Record<Op['kind'], SsfStreamEvent['type']> = {
  add: 'SsfSubjectAdded',
  remove: 'SsfSubjectRemoved',
  patch: 'SsfStreamUpdated',
  verify: 'SsfVerificationRequested',
  delete: 'SsfStreamDeleted',
};
const subject = (i: number) => ({ format: 'opaque', id: `client-${i}` });

describe('SSF stream commands under every interleaving fast-check picks', () => {
  it('each success is one event, the final state is their fold, one verification per interval, delete is final', async () => {
    const ops = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('add' as const), i: fc.integer({ min: 0, max: 3 }) }),
        fc.record({ kind: fc.constant('remove' as const), i: fc.integer({ min: 0, max: 1 }) }),
        fc.record({ kind: fc.constant('patch' as const), i: fc.integer({ min: 0, max: 99 }) }),
        fc.constant({ kind: 'verify' as const }),
        fc.constant({ kind: 'delete' as const }),
      ),
      { minLength: 2, maxLength: 6 },
    );
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), ops, async (s, list: Op[]) => {
        const created: SsfStreamResult = await setup.bus.execute(
          new CreateSsfStreamCommand({ aud: 'rp', eventsRequested: [], delivery: { method: SSF_PUSH, endpointUrl: 'https://rp.example/ssf' } }, meta),
        );
        const id = created.state.streamId;
        // Two subjects are there before the run, so removes can succeed.
        for (const i of [0, 1]) await setup.bus.execute(new AddSsfSubjectCommand(id, subject(i), undefined, meta));
        const results = await scheduled(s, (p) =>
          list.map((op) => {
            switch (op.kind) {
              case 'add':
                return p.bus.execute(new AddSsfSubjectCommand(id, subject(op.i), undefined, meta));
              case 'remove':
                return p.bus.execute(new RemoveSsfSubjectCommand(id, subject(op.i), meta));
              case 'patch':
                return p.bus.execute(new UpdateSsfStreamCommand(id, 'patch', { description: `d-${op.i}-${Math.random()}` }, meta));
              case 'verify':
                return p.bus.execute(new RequestSsfVerificationCommand(id, null, meta));
              case 'delete':
                return p.bus.execute(new DeleteSsfStreamCommand(id, meta));
            }
          }),
        );
        const recorded = await ledger.store.readStream(ssfStreamId(id));
        const during = recorded.slice(3).map((e) => toDomainEvent<SsfStreamEvent>(e));
        const outcomes = results.map(outcome);
        // Each success appended exactly the events it decided (a repeated add or remove appends none).
        const appendedBy = (r: PromiseSettledResult<SsfStreamResult>) => (r.status === 'fulfilled' && r.value.position !== undefined ? 1 : 0);
        expect(during.length).toBe(results.reduce((n, r) => n + appendedBy(r), 0));
        for (const kind of Object.keys(EXPECTED_EVENT) as Op['kind'][]) {
          const appended = list.filter((op, k) => op.kind === kind && appendedBy(results[k]) === 1).length;
          expect({ kind, events: during.filter((e) => e.type === EXPECTED_EVENT[kind]).length }).toEqual({ kind, events: appended });
        }
        // Refusals are only those the rules allow.
        for (const [k, o] of outcomes.entries()) {
          const gone = 'ssf_stream_not_found';
          const allowed = { add: ['ok', gone], remove: ['ok', gone, 'ssf_subject_not_found'], patch: ['ok', gone], verify: ['ok', 'rate_limited', gone], delete: ['ok', gone] }[list[k].kind];
          expect({ op: list[k].kind, outcome: o, allowed: allowed.includes(o) }).toEqual({ op: list[k].kind, outcome: o, allowed: true });
        }
        expect(during.filter((e) => e.type === 'SsfVerificationRequested').length).toBeLessThanOrEqual(1);
        const deletedAt = during.findIndex((e) => e.type === 'SsfStreamDeleted');
        if (list.some((op) => op.kind === 'delete')) {
          expect(deletedAt).toBe(during.length - 1);
          expect(outcomes.filter((o, k) => list[k].kind === 'delete' && o === 'ok')).toHaveLength(1);
        } else {
          expect(deletedAt).toBe(-1);
        }
        // The state the command side now loads is the fold of what was recorded.
        const folded = recorded.map((e) => toDomainEvent<SsfStreamEvent>(e)).reduce(ssfStreamAggregate.evolve, ssfStreamAggregate.initial(id));
        const loaded = await readState(id);
        expect(canonicalJson(loaded)).toBe(canonicalJson(folded));
        if (deletedAt === -1) {
          // Subjects: the two from before, plus each answered add, minus each answered remove, in stream order.
          const expected = new Set([0, 1].map((i) => ssfSubjectIdKey(subject(i) as never)));
          for (const e of during) {
            if (e.type === 'SsfSubjectAdded') expected.add(ssfSubjectIdKey(e.data.subjectId));
            if (e.type === 'SsfSubjectRemoved') expected.delete(ssfSubjectIdKey(e.data.subjectId));
          }
          expect(new Set(Object.keys(loaded.subjects))).toEqual(expected);
        } else {
          expect(loaded.lifecycle).toBe('deleted');
        }
      }),
      { numRuns: 20 },
    );
  });
});

async function readState(id: string): Promise<SsfStreamState> {
  const loaded = await ledger.store.loadStream(ssfStreamId(id));
  const snapshot = (loaded.snapshot?.state as { state: SsfStreamState } | undefined)?.state ?? ssfStreamAggregate.initial(id);
  return loaded.events.map((e) => toDomainEvent<SsfStreamEvent>(e)).reduce(ssfStreamAggregate.evolve, snapshot);
}
