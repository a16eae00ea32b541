/**
 * LEDGER_EMBEDDED_THREAD of the test run, handed to every ledger the harnesses start (in process or
 * spawned), so the embedded suites run with PGlite in its thread (the default) or in the main one:
 * `LEDGER_EMBEDDED_THREAD=off npx jest test/ledger-embedded.e2e.spec.ts`.
 */
export function embeddedThreadEnv(): Record<string, string> {
  const value = process.env.LEDGER_EMBEDDED_THREAD;
  return value ? { LEDGER_EMBEDDED_THREAD: value } : {};
}
