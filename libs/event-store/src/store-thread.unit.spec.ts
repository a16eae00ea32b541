import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SupervisedThread } from './store-thread';

/**
 * A plain-JS worker that counts its starts in a file and fails the ones listed in workerData.fail
 * (as a thread does when the database is down), else starts and stays up until told to stop.
 */
const WORKER = `
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const n = Number(fs.existsSync(workerData.counter) ? fs.readFileSync(workerData.counter, 'utf8') : 0) + 1;
fs.writeFileSync(workerData.counter, String(n));
if (workerData.fail.includes(n)) {
  parentPort.postMessage({ kind: 'error', error: { name: 'Error', message: 'connect ECONNREFUSED (start ' + n + ')' } });
  process.exit(1);
}
const timer = setInterval(() => undefined, 1000);
parentPort.on('message', (m) => { if (m.kind === 'stop') { clearInterval(timer); parentPort.close(); } });
parentPort.postMessage({ kind: 'started', position: n });
`;

describe('SupervisedThread', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-thread-'));
    fs.writeFileSync(path.join(dir, 'worker.js'), WORKER);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('start fails with the reason the thread gives', async () => {
    const thread = new SupervisedThread('test', path.join(dir, 'worker'), { counter: path.join(dir, 'n'), fail: [1] }, { message: () => undefined, error: () => undefined });
    await expect(thread.start()).rejects.toThrow(/ECONNREFUSED \(start 1\)/);
  });

  it('a thread that dies is started again, and again while it cannot start, until it runs', async () => {
    const starts: number[] = [];
    const errors: string[] = [];
    const thread = new SupervisedThread('test', path.join(dir, 'worker'), { counter: path.join(dir, 'n'), fail: [2, 3] }, {
      message: () => undefined,
      started: (m) => starts.push(m.position ?? -1),
      error: (e) => errors.push(e.message),
    });
    await thread.start();
    try {
      await thread.kill(); // start 1 dies; starts 2 and 3 fail; start 4 runs
      const deadline = Date.now() + 15_000;
      while (starts.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(starts).toEqual([1, 4]);
      expect(errors).toEqual([
        expect.stringMatching(/test thread exited with code 1; starting it again/),
        expect.stringMatching(/start 2/),
        expect.stringMatching(/start 3/),
      ]);
    } finally {
      await thread.stop();
    }
  });
});
