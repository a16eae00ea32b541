import { InProcessEventSource, readCheckpoint, writeCheckpoint } from '@token-ledger/messaging';
import type { PublicEvent } from '@token-ledger/envelope';
import { eventually, familyEvent, openTempStore } from './support';

jest.setTimeout(60_000);

/**
 * `checkpointedByHandler` (the anomaly engine writing its state behind): the source never writes the
 * checkpoint; after a failed batch it resumes after the checkpoint the handler last wrote and hands
 * over everything since again — also events it had handed over already, which a source that
 * deduplicates by event id would otherwise drop.
 */
describe('InProcessEventSource with checkpointedByHandler', () => {
  it('replays from the handler\'s checkpoint after a failure, including events it handed over before', async () => {
    const temp = await openTempStore();
    const { store } = temp;
    const seen: string[] = [];
    let failOnce = true;
    const source = new InProcessEventSource(store, { name: 'behind', checkpointedByHandler: true, retryDelayMs: 0 });
    try {
      const append = async (n: number) => {
        for (let i = 0; i < n; i++) await store.append(`family-f${seen.length}-${i}`, [familyEvent('TokenIssued', 'f', 's')], { expectedRevision: 'any' });
      };
      let written = 0;
      await source.start(async (events: PublicEvent[]) => {
        for (const e of events) {
          if (e.position === 4 && failOnce) {
            failOnce = false;
            throw new Error('flush failed'); // what was handled since the checkpoint is lost with it
          }
          seen.push(`${e.position}`);
          if (e.position === 2 && written < 2) {
            written = 2;
            await writeCheckpoint(store.sql, 'behind', 2); // the handler made 1..2 durable
          }
        }
      });
      await append(3);
      await eventually(() => seen.includes('3'), '1..3 handled'); // and remembered as seen by the source
      await append(3);
      await eventually(() => seen.includes('6'), 'all six handled');
      // The failure at 4 replays from 2: 3 comes again although its batch had succeeded.
      expect(seen.slice(0, 3)).toEqual(['1', '2', '3']);
      expect(seen.slice(3)).toEqual(['3', '4', '5', '6']);
      expect(await readCheckpoint(store.sql, 'behind')).toBe(2); // the source never writes it
    } finally {
      await source.stop();
      await temp.close();
    }
  });
});
