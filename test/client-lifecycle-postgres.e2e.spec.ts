import { describeWithBackend } from './backends';
import { clientLifecycleSuite, twoInstancesSuite } from './support/client-lifecycle-suite';

describeWithBackend('postgres', 'client lifecycle over HTTP on the PostgreSQL store', (url) => {
  clientLifecycleSuite(() => ({ kind: 'postgres', url }));
});

describeWithBackend('postgres', 'client lifecycle with two instances on one PostgreSQL database', (url) => {
  twoInstancesSuite(() => url);
});
