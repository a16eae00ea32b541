import { describeWithBackend } from './backends';
import { dpopSuite, dpopTwoInstancesSuite } from './support/dpop-suite';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describeWithBackend('postgres', 'DPoP (RFC 9449) over HTTP on the PostgreSQL store', (url) => {
  dpopSuite(() => ({ kind: 'postgres', url }));
});

describeWithBackend('postgres', 'DPoP replay across two instances on one PostgreSQL database, without Redis', (url) => {
  dpopTwoInstancesSuite(() => url);
});

describeWithBackend('postgres', 'DPoP replay across two instances on one PostgreSQL database, with Redis', (url) => {
  dpopTwoInstancesSuite(() => url, () => REDIS_URL);
});
