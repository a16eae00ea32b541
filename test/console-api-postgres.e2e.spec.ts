import { describeWithBackend } from './backends';
import { consoleApiSuite, triageConcurrencySuite } from './support/console-api-suite';

describeWithBackend('postgres', 'analyst console API over HTTP on the PostgreSQL store', (url) => {
  consoleApiSuite(() => ({ kind: 'postgres', url }));
});

// Real concurrency needs real connections (PGlite runs one statement at a time).
describeWithBackend('postgres', 'anomaly triage under concurrency on the PostgreSQL store', (url) => {
  triageConcurrencySuite(() => ({ kind: 'postgres', url }));
});
