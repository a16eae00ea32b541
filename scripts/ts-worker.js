/**
 * Runs a worker thread's TypeScript entry (workerData.tsEntry) from the sources, for jest: jest
 * compiles only what loads in its own thread (ts-register.js does the compiling). Built code (dist)
 * never comes here: it has the compiled entry.
 */
const { workerData } = require('node:worker_threads');

require('./ts-register');
require(workerData.tsEntry);
