/**
 * Loads the project's TypeScript from the sources, for code jest does not load itself: a worker
 * thread (ts-worker.js) or a child process (`node -r ./scripts/ts-register.js apps/cli/src/main.ts
 * serve`, the tests that SIGKILL a server). Modules are compiled as they load with @swc/core and
 * the project's .swcrc (what @swc/jest uses), and `@token-ledger/<lib>` resolves to libs/<lib>/src
 * (the jest and tsconfig alias). Built code (dist) never comes here.
 */
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { transformSync } = require('@swc/core');

const root = path.resolve(__dirname, '..');
const { $schema, ...swcrc } = JSON.parse(fs.readFileSync(path.join(root, '.swcrc'), 'utf8'));

require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { ...swcrc, filename, swcrc: false, configFile: false });
  module._compile(code, filename);
};

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const alias = /^@token-ledger\/([a-z-]+)$/.exec(request);
  return resolve.call(this, alias ? path.join(root, 'libs', alias[1], 'src') : request, ...rest);
};
