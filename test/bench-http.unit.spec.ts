import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Pool } from 'undici';

import { dispatchText } from '../bench/refresh/http';

/** The load generator's request (bench:refresh): status and whole body, however the server frames it. */
describe('bench:refresh dispatchText', () => {
  let server: http.Server;
  let pool: Pool;
  let hang: http.ServerResponse | undefined;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url === '/chunked') {
          // no content-length: chunked transfer encoding, the body in three writes
          res.writeHead(201, { 'content-type': 'application/json' });
          res.write('{"echo":');
          setTimeout(() => {
            res.write(JSON.stringify(body));
            setTimeout(() => res.end(`,"auth":${JSON.stringify(req.headers.authorization ?? null)}}`), 5);
          }, 5);
        } else if (req.url === '/empty') {
          res.writeHead(204).end();
        } else {
          hang = res; // never answered: the test aborts it
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 2 });
  });

  afterAll(async () => {
    hang?.destroy();
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('returns the status and the whole body of a chunked answer, with the headers and body it was given', async () => {
    const res = await dispatchText(pool, { method: 'POST', path: '/chunked', headers: { authorization: 'Basic eA==' }, body: 'a=1&b=2' });
    expect(res.status).toBe(201);
    expect(JSON.parse(res.text)).toEqual({ echo: 'a=1&b=2', auth: 'Basic eA==' });
  });

  it('returns an empty text for an answer without a body', async () => {
    await expect(dispatchText(pool, { method: 'GET', path: '/empty' })).resolves.toEqual({ status: 204, text: '' });
  });

  it('hands out an abort that fails the request in flight', async () => {
    let abort: ((err?: Error) => void) | undefined;
    const pending = dispatchText(pool, { method: 'POST', path: '/hang', body: 'x' }, (a) => (abort = a));
    await new Promise((r) => setTimeout(r, 50));
    expect(abort).toBeDefined();
    abort?.(new Error('window ended'));
    await expect(pending).rejects.toThrow('window ended');
  });
});
