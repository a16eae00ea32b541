/**
 * A label whose values come from outside (client ids): the first `max` distinct values seen keep
 * their own value, every later one is `_other`, so a metric has at most max + 1 series per label
 * however many values there are. First-seen is per process and stable for its life (a busy client
 * that appears late is `_other` until a restart); no eviction, so a series never changes meaning.
 */
export class BoundedLabel {
  static readonly OTHER = '_other';
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return BoundedLabel.OTHER;
    this.seen.add(value);
    return value;
  }
}
