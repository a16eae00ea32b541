import { readModelSuite } from './support/read-model-suite';

describe('read models on the embedded (PGlite) store', () => {
  readModelSuite(() => ({ kind: 'embedded' }));
});
