import * as path from 'node:path';
import { defaultConsoleDir, isConsolePath } from './console-static';

describe('console static files', () => {
  const root = path.resolve(__dirname, '../../../..');

  it('finds dist/console of the project from the compiled app and from the sources alike', () => {
    expect(defaultConsoleDir(path.join(root, 'dist', 'apps', 'token-ledger', 'src', 'console'))).toBe(path.join(root, 'dist', 'console'));
    expect(defaultConsoleDir(__dirname)).toBe(path.join(root, 'dist', 'console'));
  });

  it('gives the console CSP to /console and below only', () => {
    expect(['/console', '/console/', '/console/a/b?x=1', '/console?x'].map(isConsolePath)).toEqual([true, true, true, true]);
    expect(['/consoles', '/v1/console', '/', '/console.html'].map(isConsolePath)).toEqual([false, false, false, false]);
  });
});
