import { FeedHeartbeat } from './feed-heartbeat';
import type { RevocationHeartbeat } from './revocation-record';

describe('FeedHeartbeat', () => {
  it('beats {position, at} with the head seen one tick earlier, only while the feed has caught up with it', async () => {
    let head = 10;
    let processed = 10;
    const published: Array<{ jws: string; hb: RevocationHeartbeat }> = [];
    const beat = new FeedHeartbeat({
      intervalMs: 60_000,
      signer: { signJws: async (typ, payload) => `${typ}:${JSON.stringify(payload)}` },
      head: async () => head,
      caughtUpTo: async (position) => processed >= position,
      publish: async (jws, hb) => void published.push({ jws, hb }),
      now: () => Date.parse('2026-01-01T00:00:00Z'),
    });
    await beat.tick(); // first tick: only takes the target
    expect(published).toEqual([]);
    head = 12;
    await beat.tick();
    expect(published.map((p) => p.hb)).toEqual([{ position: 10, at: '2026-01-01T00:00:00.000Z' }]);
    expect(published[0].jws).toBe('revocation-heartbeat+jwt:{"position":10,"at":"2026-01-01T00:00:00.000Z"}');
    // The store moved on (12) but the feed stalled at 10: no heartbeat, however long it lasts.
    await beat.tick();
    await beat.tick();
    expect(published).toHaveLength(1);
    processed = 12;
    await beat.tick();
    expect(published.map((p) => p.hb.position)).toEqual([10, 12]);
    await beat.stop();
  });
});
