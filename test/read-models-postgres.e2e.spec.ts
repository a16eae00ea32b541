import { describeWithBackend } from './backends';
import { readModelSuite } from './support/read-model-suite';

describeWithBackend('postgres', 'read models on the PostgreSQL store', (url) => {
  readModelSuite(() => ({ kind: 'postgres', url }));
});
