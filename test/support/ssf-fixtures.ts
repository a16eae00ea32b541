import { randomBytes } from 'node:crypto';
import {
  SSF_EVENTS_SUPPORTED,
  SSF_POLL,
  SSF_PUSH,
  type SsfStreamEvent,
  type SsfStreamStatus,
  type SsfSubjectId,
} from '@token-ledger/domain';
import { appendChained, ssfStreamId, toNewEvent } from '@token-ledger/envelope';
import type { EventStore } from '@token-ledger/event-store';
import type { LedgerSecrets } from '@token-ledger/crypto';

/**
 * Until the control plane's HTTP API (POST /ssf/streams …) is merged: SSF streams made by appending
 * the contract events (libs/domain/src/ssf-events.ts) to `ssf-stream-<id>` the way the ledger does
 * (toNewEvent + appendChained), so the data plane is tested on exactly what it will read.
 */
export class SsfFixture {
  constructor(
    private readonly store: EventStore,
    private readonly issuer: string,
    private readonly opts: { secrets?: LedgerSecrets; macKey?: Uint8Array } = {},
  ) {}

  async createPush(input: { endpointUrl: string; aud?: string[]; events?: string[]; authorization?: string; status?: SsfStreamStatus }): Promise<string> {
    const sealed = input.authorization && this.opts.secrets ? this.opts.secrets.sealField(input.authorization, 'ssf:push-authorization') : undefined;
    return this.create({ method: SSF_PUSH, endpointUrl: input.endpointUrl, ...(sealed ? { authorizationHeaderSealed: sealed } : {}) }, input);
  }

  async createPoll(input: { aud?: string[]; events?: string[]; status?: SsfStreamStatus } = {}): Promise<string> {
    const streamId = randomId();
    return this.create({ method: SSF_POLL, endpointUrl: `${this.issuer}/ssf/poll/${streamId}` }, input, streamId);
  }

  addSubject(streamId: string, subjectId: SsfSubjectId): Promise<void> {
    return this.append(streamId, { ...HEADER(), type: 'SsfSubjectAdded', data: { streamId, subjectId, verified: true } });
  }

  removeSubject(streamId: string, subjectId: SsfSubjectId): Promise<void> {
    return this.append(streamId, { ...HEADER(), type: 'SsfSubjectRemoved', data: { streamId, subjectId } });
  }

  setStatus(streamId: string, status: SsfStreamStatus, reason: string | null = null): Promise<void> {
    return this.append(streamId, { ...HEADER(), type: 'SsfStreamStatusChanged', data: { streamId, status, reason } });
  }

  verify(streamId: string, state: string | null): Promise<void> {
    return this.append(streamId, { ...HEADER(), type: 'SsfVerificationRequested', data: { streamId, state } });
  }

  remove(streamId: string): Promise<void> {
    return this.append(streamId, { ...HEADER(), type: 'SsfStreamDeleted', data: { streamId } });
  }

  private async create(
    delivery: Extract<SsfStreamEvent, { type: 'SsfStreamCreated' }>['data']['delivery'],
    input: { aud?: string[]; events?: string[]; status?: SsfStreamStatus },
    streamId = randomId(),
  ): Promise<string> {
    const requested = input.events ?? [...SSF_EVENTS_SUPPORTED];
    await this.append(streamId, {
      ...HEADER(),
      type: 'SsfStreamCreated',
      data: {
        streamId,
        status: input.status ?? 'enabled',
        aud: input.aud ?? ['https://rp.example'],
        eventsRequested: requested,
        eventsDelivered: requested.filter((e) => (SSF_EVENTS_SUPPORTED as readonly string[]).includes(e)),
        delivery,
        description: null,
      },
    });
    return streamId;
  }

  private async append(streamId: string, event: SsfStreamEvent): Promise<void> {
    await appendChained(this.store, ssfStreamId(streamId), [toNewEvent(event, { actor: 'ssf-fixture' })], { macKey: this.opts.macKey });
  }
}

const HEADER = () => ({ familyId: '' as const, subject: '' as const, clientId: '' as const, occurredAt: new Date().toISOString() });
const randomId = () => randomBytes(8).toString('hex');
