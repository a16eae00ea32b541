import { describeWithBackend } from './backends';
import { ledgerBehaviourSuite } from './support/ledger-suite';

describeWithBackend('postgres', 'token-ledger over HTTP on the PostgreSQL store', (url) => {
  ledgerBehaviourSuite(() => ({ kind: 'postgres', url }));
});
