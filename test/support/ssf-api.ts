import { SSF_EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH, type SsfStreamStatus, type SsfSubjectId } from '@token-ledger/domain';
import { ADMIN_TOKEN } from './ledger-harness';

/**
 * SSF streams through the control plane's HTTP API (POST /ssf/streams, /ssf/subjects:add,
 * /ssf/status, /ssf/verify, DELETE /ssf/streams), with the admin token, as a receiver's operator
 * would make them. The ledger must run with LEDGER_SSF_ALLOW_INSECURE_PUSH=true for http receivers.
 */
export class SsfApi {
  constructor(private readonly baseUrl: string) {}

  async createPush(input: { endpointUrl: string; aud?: string[]; events?: string[]; authorization?: string }): Promise<string> {
    return this.create({ method: SSF_PUSH, endpoint_url: input.endpointUrl, ...(input.authorization ? { authorization_header: input.authorization } : {}) }, input);
  }

  async createPoll(input: { aud?: string[]; events?: string[] } = {}): Promise<string> {
    return this.create({ method: SSF_POLL }, input);
  }

  async addSubject(streamId: string, subject: SsfSubjectId): Promise<void> {
    await this.call('POST', '/ssf/subjects:add', { stream_id: streamId, subject }, 200);
  }

  async removeSubject(streamId: string, subject: SsfSubjectId): Promise<void> {
    await this.call('POST', '/ssf/subjects:remove', { stream_id: streamId, subject }, 204);
  }

  async setStatus(streamId: string, status: SsfStreamStatus, reason?: string): Promise<void> {
    await this.call('POST', '/ssf/status', { stream_id: streamId, status, ...(reason ? { reason } : {}) }, 200);
  }

  /** POST /ssf/verify; within min_verification_interval (429) it waits the Retry-After and asks again. */
  async verify(streamId: string, state: string): Promise<void> {
    for (;;) {
      const res = await this.request('POST', '/ssf/verify', { stream_id: streamId, state });
      if (res.status === 204) return;
      if (res.status !== 429) throw new Error(`POST /ssf/verify: ${res.status} ${await res.text()}`);
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? '1') * 1000));
    }
  }

  async remove(streamId: string): Promise<void> {
    await this.call('DELETE', `/ssf/streams?stream_id=${encodeURIComponent(streamId)}`, undefined, 204);
  }

  private async create(delivery: Record<string, unknown>, input: { aud?: string[]; events?: string[] }): Promise<string> {
    const body = await this.call('POST', '/ssf/streams', { delivery, events_requested: input.events ?? [...SSF_EVENTS_SUPPORTED], aud: input.aud ?? ['https://rp.example'] }, 201);
    return (body as { stream_id: string }).stream_id;
  }

  private async call(method: string, route: string, body: unknown, expected: number): Promise<unknown> {
    const res = await this.request(method, route, body);
    const text = await res.text();
    if (res.status !== expected) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  private request(method: string, route: string, body: unknown): Promise<Response> {
    return fetch(`${this.baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
}
