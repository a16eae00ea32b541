import { ssfDeliverySuite } from './support/ssf-delivery-suite';

describe('SSF delivery on the embedded (PGlite) store', () => {
  ssfDeliverySuite(() => ({ kind: 'embedded' }));
});
