import { Controller, Get, Inject, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventStore } from '@token-ledger/event-store';
import { toPublicEvent } from '@token-ledger/envelope';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';
import { signRevocations, toRevocationRecord, type RevocationRecord, type SignedRevocation } from '@token-ledger/messaging';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { principalOf } from '../api-keys/principal';
import { ApiKeyRegistry } from '../ledger/api-key-registry';
import type { LedgerConfig } from '../config/ledger-config';
import { EVENT_STORE, LEDGER_CONFIG } from '../ledger/tokens';
import { RevocationsService } from './revocations.service';

/** A client slower than this much buffered output is cut off; it resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 1 << 20;
const REPLAY_PAGE = 1000;

/**
 * `GET /v1/revocations/stream` (SPEC §3): Server-Sent Events for resource servers that do not read
 * Kafka. Needs an API key with revocations:read (what resource servers get), or admin.
 *
 * - Each revocation is `event: revocation`, `id: <store position>`, `data: <JWS>`: the
 *   RevocationRecord signed with the ledger's active key (typ `revocation+jwt`, as on Kafka).
 * - Without Last-Event-ID the stream opens with every revocation still relevant
 *   (accessTokensValidUntil in the future); with `Last-Event-ID: <position>` (header, or
 *   `?lastEventId=`) it replays from the event store after that position instead — clamped to the
 *   last position recorded before now − max access-token TTL − 1 min (positionBefore): an older id
 *   cannot make the server scan the whole store, and records before the clamp have expired anyway.
 *   Either way one `event: ready` follows (data `{position}`), then live records.
 * - `event: heartbeat`, `data: <JWS>` (typ `revocation-heartbeat+jwt`, payload `{position, at}`)
 *   every LEDGER_REVOCATION_HEARTBEAT_MS while the hub's feed keeps up with the store: verifiers
 *   measure staleness from the last valid one.
 * - Keep-alive every `?heartbeatMs=` (default 5000, 100–60000): a comment plus `id:` of the hub's
 *   position, so a reconnect after a quiet period does not replay much.
 */
@ApiTags('revocations')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('revocations:read')
@Controller('v1/revocations')
export class RevocationsController {
  constructor(
    private readonly service: RevocationsService,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    private readonly keys: ApiKeyRegistry,
    @Inject(KeyRing) private readonly keyRing: KeyRing,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  @Get('stream')
  async stream(@Req() request: FastifyRequest, @Res() reply: FastifyReply, @Query('lastEventId') lastEventIdQuery?: string, @Query('heartbeatMs') heartbeatQuery?: string): Promise<void> {
    const hub = this.service.hub;
    const raw = reply.raw;
    const header = request.headers['last-event-id'];
    const lastEventId = parsePosition(typeof header === 'string' ? header : lastEventIdQuery);
    const heartbeatMs = Math.min(60_000, Math.max(100, Number(heartbeatQuery) || 5_000));

    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write(`retry: 1000\n\n`);
    this.service.track(raw);

    let closed = false;
    let sent = lastEventId ?? 0;
    const queued: SignedRevocation[] = [];
    let live = false;
    const write = (chunk: string) => {
      if (closed) return;
      raw.write(chunk);
      if (raw.writableLength > MAX_BUFFERED_BYTES) raw.destroy();
    };
    const send = ({ record: r, jws }: SignedRevocation) => {
      if (r.position <= sent && lastEventId !== undefined) return;
      write(`event: revocation\nid: ${r.position}\ndata: ${jws}\n\n`);
      sent = Math.max(sent, r.position);
    };
    // Subscribe before reading history, so nothing falls between the replay and live delivery.
    const unsubscribe = hub.subscribe((records) => {
      if (!live) {
        queued.push(...records);
        return;
      }
      for (const r of records) if (r.record.position > sent) send(r);
    }, (jws) => {
      if (live) write(`event: heartbeat\ndata: ${jws}\n\n`);
    });
    // A stream outlives its authentication: the key is checked again at every keep-alive, so a
    // revoked or expired key loses the stream within one heartbeat (and a reconnect gets 401).
    // (At most once a second, however short the heartbeat.)
    const keyId = principalOf(request)?.keyId ?? null;
    let checkedAt = Date.now();
    const timer = setInterval(() => {
      if (keyId !== null && Date.now() - checkedAt >= 1000) {
        checkedAt = Date.now();
        this.keys.isUsable(keyId, Date.now()).then(
          (usable) => usable || raw.destroy(),
          () => undefined, // the store is unreachable: keep serving what the hub has
        );
      }
      const p = hub.position;
      if (live && p > sent) {
        sent = p;
        write(`id: ${p}\n: keep-alive\n\n`);
      } else write(': keep-alive\n\n');
    }, heartbeatMs);
    const cleanup = () => {
      closed = true;
      clearInterval(timer);
      unsubscribe();
    };
    raw.on('close', cleanup);
    raw.on('error', cleanup);

    try {
      if (lastEventId !== undefined) {
        const mapping = { maxAccessTokenTtlSeconds: this.config.maxAccessTokenTtlSeconds, subjectHash: (s: string) => this.secrets.subjectHash(s) };
        let after = Math.max(lastEventId, await this.service.replayFloor());
        for (;;) {
          const page = await this.store.readAll({ after, maxCount: REPLAY_PAGE });
          if (page.length === 0 || closed) break;
          const records: RevocationRecord[] = [];
          for (const recorded of page) {
            const r = toRevocationRecord(toPublicEvent(recorded), mapping);
            if (r) records.push(r);
          }
          for (const r of await signRevocations(this.keyRing, records)) send(r);
          after = page[page.length - 1].position;
          sent = Math.max(sent, after);
        }
      } else {
        await this.service.hubCaughtUp();
        for (const r of hub.active()) send(r);
        sent = Math.max(sent, hub.position);
      }
      for (const r of queued.splice(0)) if (r.record.position > sent) send(r);
      live = true;
      write(`event: ready\ndata: ${JSON.stringify({ position: sent })}\n\n`);
      if (hub.lastHeartbeat) write(`event: heartbeat\ndata: ${hub.lastHeartbeat}\n\n`);
    } catch (error) {
      cleanup();
      raw.destroy(error as Error);
    }
  }
}

function parsePosition(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
