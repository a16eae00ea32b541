import { describeWithBackend } from './backends';
import { forgeryFloodSuite } from './support/forgery-flood-suite';

jest.setTimeout(180_000);

describe('forgery flood on the embedded store', () => {
  forgeryFloodSuite(() => ({ kind: 'embedded' }));
});

describeWithBackend('postgres', 'forgery flood on the PostgreSQL store', (url) => {
  forgeryFloodSuite(() => ({ kind: 'postgres', url }));
});
