import { ledgerBehaviourSuite } from './support/ledger-suite';

describe('token-ledger over HTTP on the embedded (PGlite) store', () => {
  ledgerBehaviourSuite(() => ({ kind: 'embedded' }));
});
