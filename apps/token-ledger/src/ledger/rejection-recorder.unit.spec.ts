import type { CommandBus } from '@nestjs/cqrs';
import type { LedgerSecrets } from '@token-ledger/crypto';
import { formatFamilyId, type FamilyEvent, type RefreshRejected } from '@token-ledger/domain';
import { MemoryEventStore } from '@token-ledger/event-store';
import { ev, T0 } from '../../../../libs/forensics/src/testing/fixtures';
import { testSecrets } from '../../../../libs/domain/src/testing/test-secrets';
import { LedgerMetrics } from '../health/metrics';
import { AggregateRepository } from './aggregate-repository';
import { familyAggregate } from './aggregates';
import { RecordRejectionsHandler, type RecordRejectionsCommand } from './commands/record-rejections.command';
import { RejectionRecorder } from './rejection-recorder';

const FAM = formatFamilyId(Buffer.alloc(16, 5));
const UNKNOWN = formatFamilyId(Buffer.alloc(16, 6));

async function setUp() {
  const store = new MemoryEventStore();
  const families = new AggregateRepository(store, familyAggregate);
  await families.execute(FAM, {}, () => ({ events: [ev.issued(FAM, 'alice', T0) as FamilyEvent], result: undefined }));
  const handler = new RecordRejectionsHandler(families, { tokenSecrets: testSecrets() } as unknown as LedgerSecrets);
  const bus = { down: false, execute: (c: RecordRejectionsCommand) => (bus.down ? Promise.reject(new Error('store down')) : handler.execute(c)) };
  const metrics = new LedgerMetrics();
  const recorder = new RejectionRecorder(bus as unknown as CommandBus, metrics);
  const rejected = async (id = FAM) => (await store.readStream(`family-${id}`).catch(() => [])).filter((e) => e.type === 'RefreshRejected');
  return { store, bus, metrics, recorder, rejected };
}

const forged = (i: number, ip: string) => ({ reason: 'bad_secret' as const, presentedGeneration: 1, context: { ip }, at: Date.now() + i });

describe('RejectionRecorder', () => {
  it("records a family's tallied refusals as one append, and nothing for a family that does not exist", async () => {
    const { recorder, rejected, metrics } = await setUp();
    for (let i = 0; i < 300; i++) recorder.note(FAM, forged(i, `192.0.2.${i % 3}`));
    recorder.note(UNKNOWN, forged(0, '192.0.2.9'));
    expect(recorder.waiting).toBe(301);
    await recorder.flush();
    expect(recorder.waiting).toBe(0);
    const events = await rejected();
    expect(events).toHaveLength(1);
    const data = (events[0].data as RefreshRejected['data']);
    expect(data).toMatchObject({ reason: 'bad_secret', count: 300, otherSources: 0 });
    expect(data.sources).toEqual([{ ip: '192.0.2.0', count: 100 }, { ip: '192.0.2.1', count: 100 }, { ip: '192.0.2.2', count: 100 }]);
    expect(await rejected(UNKNOWN)).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('token_ledger_refresh_rejections_tallied_total')).toContain('outcome="tallied"} 301');
  });

  it('keeps the counts when recording fails and records them with the next flush; a stop flushes', async () => {
    const { recorder, rejected, bus } = await setUp();
    for (let i = 0; i < 5; i++) recorder.note(FAM, forged(i, '198.51.100.1'));
    bus.down = true;
    await recorder.flush();
    expect(recorder.waiting).toBe(5);
    recorder.note(FAM, forged(9, '198.51.100.2'));
    bus.down = false;
    await recorder.onModuleDestroy();
    const events = await rejected();
    expect(events.map((e) => (e.data as RefreshRejected['data']).count)).toEqual([6]);
  });

  it('concurrent flushes run one after the other and record each refusal once', async () => {
    const { recorder, rejected } = await setUp();
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      recorder.note(FAM, forged(i, '203.0.113.1'));
      flushes.push(recorder.flush());
    }
    await Promise.all(flushes);
    const events = await rejected();
    expect(events.reduce((n, e) => n + ((e.data as RefreshRejected['data']).count ?? 1), 0)).toBe(50);
  });
});
