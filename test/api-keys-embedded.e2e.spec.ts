import { apiKeysSuite } from './support/api-keys-suite';

jest.setTimeout(180_000);

describe('scoped API keys over HTTP on the embedded (PGlite) store', () => {
  apiKeysSuite(() => ({ kind: 'embedded' }));
});
