import { describeWithBackend } from './backends';
import { ssfDeliverySuite } from './support/ssf-delivery-suite';

describeWithBackend('postgres', 'SSF delivery on the PostgreSQL store', (url) => {
  ssfDeliverySuite(() => ({ kind: 'postgres', url }));
});
