import { InProcessEventSource, readCheckpoint, REVOCATION_EVENT_TYPES } from '@token-ledger/messaging';
import type { PublicEvent } from '@token-ledger/envelope';
import { eventually, familyEvent, openTempStore } from './support';

jest.setTimeout(60_000);

/**
 * `types` (the revocation hub's feed): the handler gets only those event types, while the source's
 * position, onPosition and checkpoint still move past everything else — a heartbeat says "current up
 * to the head" and a restart does not read the skipped events again.
 */
describe('InProcessEventSource with types', () => {
  it('hands over only those types, and its position and checkpoint reach the head past the others', async () => {
    const temp = await openTempStore();
    const { store } = temp;
    const seen: PublicEvent[] = [];
    const positions: number[] = [];
    const options = { name: 'typed', types: REVOCATION_EVENT_TYPES, batchSize: 4, onPosition: (p: number) => void positions.push(p) };
    const first = new InProcessEventSource(store, options);
    const second = new InProcessEventSource(store, options);
    try {
      await first.start(async (events) => void seen.push(...events));
      const kinds = ['TokenIssued', 'TokenRotated', 'TokenFamilyRevoked', 'TokenRotated', 'AccessTokenRevoked', 'TokenRotated', 'TokenRotated'];
      const appended = await Promise.all(kinds.map((k, i) => store.append(`family-t${i}`, [familyEvent(k, `t${i}`, 's')], { expectedRevision: 'no_stream' })));
      const head = Math.max(...appended.map((a) => a.position));
      await eventually(() => first.position === head, 'the position reaches the head');
      expect(seen.map((e) => e.type).sort()).toEqual(['AccessTokenRevoked', 'TokenFamilyRevoked']);
      expect(positions[positions.length - 1]).toBe(head);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      expect(await readCheckpoint(store.sql, 'typed')).toBe(head);
      await first.stop();

      // A restart resumes after the checkpoint: nothing comes again, the next revocation does.
      const again: PublicEvent[] = [];
      await second.start(async (events) => void again.push(...events));
      const later = await store.append('family-t9', [familyEvent('TokenRotated', 't9', 's'), familyEvent('TokenFamilyExpired', 't9', 's')], { expectedRevision: 'no_stream' });
      await eventually(() => second.position === later.position, 'the restarted source reaches the new head');
      expect(again.map((e) => e.type)).toEqual(['TokenFamilyExpired']);
    } finally {
      await first.stop();
      await second.stop();
      await temp.close();
    }
  });
});
