import type { Detection } from '@token-ledger/anomaly';
import type { ThreadError, ThreadLocation } from '@token-ledger/event-store';
import type { PoisonRecord } from '@token-ledger/messaging';
import type { AnomalyPipelineSettings } from './anomaly-pipeline';

/** What the anomaly engine's thread needs (anomaly-thread.worker.ts). */
export interface AnomalyThreadData {
  location: ThreadLocation;
  settings: AnomalyPipelineSettings;
}

/** Thread → main: carry out a detection's action (answered with `acted`), a detection recorded, a record dead-lettered, or how far it is (metrics). */
export type AnomalyThreadMessage =
  | { kind: 'act'; id: number; detection: Detection }
  | { kind: 'detected'; detection: Detection; detectedAt: number }
  | { kind: 'poison'; poison: PoisonRecord }
  | { kind: 'progress'; position: number };

/** Main → thread: the action's outcome. */
export type AnomalyThreadCommand = { kind: 'acted'; id: number; error?: ThreadError };
