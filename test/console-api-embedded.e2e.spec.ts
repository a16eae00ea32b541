import { consoleApiSuite } from './support/console-api-suite';

describe('analyst console API over HTTP on the embedded (PGlite) store', () => {
  consoleApiSuite(() => ({ kind: 'embedded' }));
});
