import { describeWithBackend } from './backends';
import { apiKeysAcrossInstancesSuite, apiKeysSuite } from './support/api-keys-suite';

jest.setTimeout(180_000);

describeWithBackend('postgres', 'scoped API keys over HTTP on the PostgreSQL store', (url) => {
  apiKeysSuite(() => ({ kind: 'postgres', url }));
});

describeWithBackend('postgres', 'scoped API keys across two instances on one PostgreSQL database', (url) => {
  apiKeysAcrossInstancesSuite(() => url);
});
