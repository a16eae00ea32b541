import { describeWithBackend } from './backends';
import { forensicsTimelineSuite } from './support/forensics-timeline-suite';

describe('forensic timeline over HTTP on the embedded store', () => {
  forensicsTimelineSuite(() => ({ kind: 'embedded' }));
});

describeWithBackend('postgres', 'forensic timeline over HTTP on the PostgreSQL store', (url) => {
  forensicsTimelineSuite(() => ({ kind: 'postgres', url }));
});
