import { REVOCATION_HEARTBEAT_TYP, type FeedSigner, type RevocationHeartbeat } from './revocation-record';

export interface FeedHeartbeatOptions {
  intervalMs: number;
  signer: FeedSigner;
  /** The store's head position now. */
  head: () => Promise<number>;
  /** Whether the feed has carried everything up to `position` (relay, propagator or hub feed). */
  caughtUpTo: (position: number) => Promise<boolean>;
  publish: (jws: string, heartbeat: RevocationHeartbeat) => Promise<void>;
  onError?: (error: unknown) => void;
  now?: () => number;
}

/**
 * The signed heartbeat of a revocation feed (SPEC §4): every `intervalMs`, `{position, at}` where
 * `position` is the store head seen one interval earlier — sent only if the feed has carried
 * everything up to it by now. A stalled relay, propagator or hub feed therefore stops the
 * heartbeats (while the broker and the HTTP stream stay up), and resource servers measure their
 * staleness from the last valid heartbeat, not from broker liveness.
 */
export class FeedHeartbeat {
  private timer?: NodeJS.Timeout;
  private target?: number;
  private ticking?: Promise<void>;

  constructor(private readonly opts: FeedHeartbeatOptions) {}

  start(): void {
    if (this.timer) return;
    // One tick at a time (a slow broker must not pile them up); stop() waits for the one running.
    const beat = () => {
      this.ticking ??= this.tick()
        .catch((error) => this.opts.onError?.(error))
        .finally(() => (this.ticking = undefined));
    };
    this.timer = setInterval(beat, this.opts.intervalMs);
    this.timer.unref();
    beat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** One beat: publish if the feed reached the previous target, then take the next target. */
  async tick(): Promise<void> {
    const target = this.target;
    const head = await this.opts.head();
    if (target !== undefined && (await this.opts.caughtUpTo(target))) {
      const heartbeat: RevocationHeartbeat = { position: target, at: new Date((this.opts.now ?? Date.now)()).toISOString() };
      await this.opts.publish(await this.opts.signer.signJws(REVOCATION_HEARTBEAT_TYP, heartbeat), heartbeat);
    }
    this.target = head;
  }
}
