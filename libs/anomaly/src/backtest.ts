import type { PublicEvent } from '@token-ledger/envelope';
import type { Detection } from './detection';
import { AnomalyEngine, type RuleContext } from './engine';
import { MemoryStateStore } from './state';

/**
 * Runs history through candidate rules with no side effects (SPEC §6): state in memory, nothing
 * appended, nothing revoked. Yields what would have fired, in event order. AnomalyDetected events
 * already in the history are skipped as inputs, like the live engine does.
 */
export async function* backtest(
  events: AsyncIterable<PublicEvent[]>,
  ctx: RuleContext,
  onBatch?: (lastPosition: number, count: number) => void,
): AsyncGenerator<Detection> {
  const engine = new AnomalyEngine(new MemoryStateStore(), ctx);
  for await (const batch of events) {
    if (batch.length === 0) continue;
    const { detections, commit } = await engine.evaluate(batch);
    await commit();
    yield* detections;
    onBatch?.(batch[batch.length - 1].position, batch.length);
  }
}
