import { describeWithBackend } from './backends';
import { forensicsTamperSuite } from './support/forensics-tamper-suite';

describe('tamper evidence on the embedded store (PGlite)', () => {
  forensicsTamperSuite(() => ({ kind: 'embedded' }));
});

describeWithBackend('postgres', 'tamper evidence on the PostgreSQL store', (url) => {
  forensicsTamperSuite(() => ({ kind: 'postgres', url }));
});
