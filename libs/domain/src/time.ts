/** Events carry ISO-8601 UTC strings; state and commands use epoch milliseconds. */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

export function fromIso(iso: string): number {
  return Date.parse(iso);
}
