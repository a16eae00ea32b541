import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

/** A SET as the receiver verified it. */
export interface ReceivedSet {
  jti: string;
  claims: JWTPayload & { sub_id: Record<string, string>; events: Record<string, Record<string, unknown>>; txn?: string };
  /** The one event type in `events`. */
  type: string;
  payload: Record<string, unknown>;
  authorization?: string;
  receivedAt: number;
}

export type ReceiverMode = { kind: 'accept' } | { kind: 'status'; status: number; body?: unknown } | { kind: 'down' };

/**
 * An RFC 8935 push receiver over real HTTP (node:http, port 0) that verifies EVERY SET with the
 * ledger's published JWKS (typ secevent+jwt, iss, aud; no sub, no exp) before it answers 202; a SET
 * that fails verification is recorded in `invalid` and answered 400 {err: invalid_request}. `mode`
 * makes it answer with an error status, or closes its port (connection refused) and opens it again.
 */
export class SsfReceiver {
  readonly received: ReceivedSet[] = [];
  readonly invalid: string[] = [];
  /** Every POST, accepted or not (the verified SET when there was one). */
  readonly attempts: { at: number; status: number; set?: ReceivedSet }[] = [];
  private server?: Server;
  private port = 0;
  private mode: ReceiverMode = { kind: 'accept' };
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  /** Called for each SET received, after it was recorded (bench: receipt time). */
  onSet?: (set: ReceivedSet) => void;
  /** Consulted for each verified SET in `accept` mode: a status to answer instead of 202 (the SET is then not recorded as received). */
  answerFor?: (set: ReceivedSet) => number | undefined;

  constructor(
    private readonly issuer: string,
    private readonly audience: string,
    jwksBase = issuer,
  ) {
    this.jwks = createRemoteJWKSet(new URL(`${jwksBase}/.well-known/jwks.json`), { cooldownDuration: 0 });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** How it answers from now on; `down` closes the port (connection refused) until another mode. */
  async setMode(mode: ReceiverMode): Promise<void> {
    if (mode.kind === 'down') {
      await this.close();
    } else if (!this.server) {
      await this.start(this.port);
    }
    this.mode = mode;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  ofType(type: string): ReceivedSet[] {
    return this.received.filter((r) => r.type === type);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const answer = (status: number, json?: unknown, set?: ReceivedSet) => {
      this.attempts.push({ at: Date.now(), status, set });
      res.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    if (this.mode.kind === 'status') return answer(this.mode.status, this.mode.body);
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/secevent+jwt' || req.headers.accept !== 'application/json') {
      this.invalid.push(`bad request line or headers: ${req.method} ${String(req.headers['content-type'])} ${String(req.headers.accept)}`);
      return answer(400, { err: 'invalid_request', description: 'expected POST application/secevent+jwt' });
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(body, this.jwks, { issuer: this.issuer, audience: this.audience, typ: 'secevent+jwt' });
      if ('sub' in payload || 'exp' in payload) throw new Error('a SET carries no sub and no exp');
      if (!protectedHeader.kid) throw new Error('no kid');
      const events = payload.events as Record<string, Record<string, unknown>>;
      const types = Object.keys(events ?? {});
      if (types.length !== 1 || typeof payload.jti !== 'string' || typeof payload.iat !== 'number' || typeof payload.sub_id !== 'object') throw new Error(`malformed SET ${JSON.stringify(payload)}`);
      const set: ReceivedSet = {
        jti: payload.jti,
        claims: payload as ReceivedSet['claims'],
        type: types[0],
        payload: events[types[0]],
        authorization: req.headers.authorization,
        receivedAt: performance.now(),
      };
      const status = this.answerFor?.(set);
      if (status !== undefined) return answer(status, undefined, set);
      this.received.push(set);
      answer(202, undefined, set);
      this.onSet?.(set);
    } catch (error) {
      this.invalid.push(String(error));
      answer(400, { err: 'invalid_request', description: String(error) });
    }
  }
}
