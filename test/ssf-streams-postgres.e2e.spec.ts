import { describeWithBackend } from './backends';
import { ssfStreamsSuite } from './support/ssf-streams-suite';

jest.setTimeout(180_000);

describeWithBackend('postgres', 'SSF stream management over HTTP on the PostgreSQL store', (url) => {
  ssfStreamsSuite(() => ({ kind: 'postgres', url }));
});
