import type { AppendResult, EventStore, NewEvent } from '@token-ledger/event-store';
import { chainHashOf, sealEvents, type SealOptions } from './hash-chain';
import { inAppendSpan } from './trace-context';

/**
 * For writers outside the AggregateRepository: appends `events` to the end of `streamId`, chained
 * to its last event (an exact-revision append, so the previous hash is known). Throws the store's
 * WrongExpectedRevisionError when another writer got there first; the caller re-reads and retries.
 */
export async function appendChained(store: EventStore, streamId: string, events: NewEvent[], options: SealOptions = {}): Promise<AppendResult> {
  const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
  const sealed = sealEvents(streamId, last ? last.revision + 1 : 0, last ? chainHashOf(last) : null, events, options);
  return inAppendSpan(streamId, sealed.events.length, () => store.append(streamId, sealed.events, { expectedRevision: last ? last.revision : 'no_stream' }));
}
