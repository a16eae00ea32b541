/**
 * `token-ledger replay`: forensic replay from the event store (never the read models). Streams:
 * memory stays at about one page of events whatever the length of the history.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { FamilyView } from '@token-ledger/domain';
import { FAMILY_STREAM_PREFIX, familyStreamId, subjectStreamId, toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import type { EventStore, OpenedStore, RecordedEvent } from '@token-ledger/event-store';
import {
  exportAllNdjson,
  familyEvents,
  FamilyStateAt,
  inRange,
  parseIsoInstant,
  readAllPages,
  subjectEvents,
  subjectFamilyIds,
  writeChunk,
} from '@token-ledger/forensics';
import type { LedgerConfig } from '../../../token-ledger/src';
import { processIo, storeOpener, type CliIo } from './cli-io';
import { fmt, ProgressBar, type OutStream } from './progress';

export const HELP = `Usage: token-ledger replay (--family ID | --subject SUB | --all)
                        [--at ISO] [--from ISO] [--to ISO] [--format table|json|ndjson] [--progress]

Replays history from the event store (not from the read models), in order.

  --family ID     one family: its events and its state as of --at
  --subject SUB   every family of a subject (listed by its subject stream), merged in global order,
                  with the subject stream's own events (links, SubjectRevoked), and each family's state
  --all           every event in the store, in global order (evidence export; no state)
  --at ISO        the instant the state is rebuilt for (default: now); later events are left out
  --from ISO      only show events that occurred at or after this instant
  --to ISO        only show events that occurred at or before this instant
  --format F      table (default): one line per event, then the state
                  json: one document {…, "events": [...], "state" | "families": …}
                  ndjson: one event per line (SPEC §3 event shape), nothing else
  --progress      progress bar on stderr even when stderr is not a terminal (it is shown
                  automatically on a terminal); events/s and ETA
  -h, --help      this help

Instants are ISO-8601 with an offset, e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00.
The state is the domain's own fold (evolveFamily) of the events that occurred at or before --at,
with idle/absolute expiry applied at --at. The embedded store allows one process per data
directory: stop the server (or use PostgreSQL) first.

Exit status: 0 done, 1 no such family/subject or a store error, 2 usage.
`;

type Format = 'table' | 'json' | 'ndjson';

/**
 * Events per readAll page of `--all --format json|table`: small pages keep each page's objects in
 * V8's young generation (cheap to collect) and the process well under 300 MB; larger ones were
 * slower. (`--format ndjson` pages as exportAllNdjson sees fit.)
 */
const EXPORT_PAGE = 1000;

class UsageError extends Error {}

interface ReplayArgs {
  target: { family: string } | { subject: string } | { all: true };
  at: number | undefined;
  from: number | undefined;
  to: number | undefined;
  format: Format;
  progress: boolean;
}

function parse(args: string[]): ReplayArgs | 'help' {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        family: { type: 'string' },
        subject: { type: 'string' },
        all: { type: 'boolean', default: false },
        at: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        format: { type: 'string', default: 'table' },
        progress: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  // The command's own name may be passed along (argv from the command word on); nothing else.
  const extra = positionals[0] === 'replay' ? positionals.slice(1) : positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const chosen = [values.family !== undefined, values.subject !== undefined, values.all].filter(Boolean).length;
  if (chosen !== 1) throw new UsageError('give exactly one of --family ID, --subject SUB or --all');
  if (values.family === '' || values.subject === '') throw new UsageError('--family and --subject need a value');
  const format = values.format as Format;
  if (!['table', 'json', 'ndjson'].includes(format)) throw new UsageError(`--format must be table, json or ndjson (got "${values.format}")`);
  const instant = (name: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const ms = parseIsoInstant(raw);
    if (ms === undefined) throw new UsageError(`--${name} must be an ISO-8601 date-time with offset, e.g. 2024-05-01T12:00:00Z (got "${raw}")`);
    return ms;
  };
  const from = instant('from', values.from);
  const to = instant('to', values.to);
  if (from !== undefined && to !== undefined && from > to) throw new UsageError('--from is after --to');
  return {
    target: values.family !== undefined ? { family: values.family } : values.subject !== undefined ? { subject: values.subject } : { all: true },
    at: instant('at', values.at),
    from,
    to,
    format,
    progress: values.progress,
  };
}

/** `token-ledger replay …`; returns the exit status. */
export async function run(args: string[], config: LedgerConfig, logger: Logger, io: CliIo = processIo()): Promise<number> {
  let parsed: ReplayArgs | 'help';
  try {
    parsed = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`token-ledger replay: ${error.message}\n\n${HELP}`);
    return 2;
  }
  if (parsed === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  const opened = await storeOpener(io)(config, logger);
  // `| head`: once the reader has enough, writes fail with EPIPE; that ends the replay quietly.
  const onOutputError = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') io.stderr.write(`token-ledger replay: output: ${error.message}\n`);
  };
  io.stdout.on('error', onOutputError);
  try {
    return await replay(opened.store, parsed, io);
  } catch (error) {
    if ((error as NodeJS.ErrnoException)?.code === 'EPIPE') return 0;
    throw error;
  } finally {
    io.stdout.off('error', onOutputError);
    await opened.close();
  }
}

async function replay(store: OpenedStore, a: ReplayArgs, io: CliIo): Promise<number> {
  const at = a.at ?? Date.now();
  // Shown: within [from, to] and not after --at.
  const shown = inRange({ from: a.from, to: a.to === undefined ? at : Math.min(a.to, at) });
  const bar = new ProgressBar(io.stderr, ProgressBar.wanted(io.stderr, a.progress), 'replay', 0);
  const out = new Output(io.stdout, a.format);
  let processed = 0;

  try {
    if ('family' in a.target) {
      const familyId = a.target.family;
      const head = await store.loadStream(familyStreamId(familyId));
      if (head.revision === undefined) {
        io.stderr.write(`token-ledger replay: no family ${familyId}\n`);
        return 1;
      }
      bar.setTotal(head.revision + 1);
      const folder = new FamilyStateAt(at);
      await out.begin({ familyId, at: iso(at), from: isoOrNull(a.from), to: isoOrNull(a.to) });
      for await (const event of familyEvents(store, familyId)) {
        folder.apply(event);
        if (shown(event)) await out.event(toPublicEvent(event));
        bar.update(++processed);
      }
      await out.end({ state: folder.view() });
    } else if ('subject' in a.target) {
      const subject = a.target.subject;
      const familyIds = await subjectFamilyIds(store, subject);
      const subjectHead = await store.loadStream(subjectStreamId(subject));
      if (subjectHead.revision === undefined) {
        io.stderr.write(`token-ledger replay: no subject ${subject}\n`);
        return 1;
      }
      if (bar.enabled) bar.setTotal(subjectHead.revision + 1 + (await streamLengths(store, familyIds.map(familyStreamId))));
      const folders = new Map<string, FamilyStateAt>();
      await out.begin({ subject, at: iso(at), from: isoOrNull(a.from), to: isoOrNull(a.to) });
      for await (const event of subjectEvents(store, subject)) {
        if (event.streamId.startsWith(FAMILY_STREAM_PREFIX)) folderFor(folders, event, at).apply(event);
        if (shown(event)) await out.event(toPublicEvent(event));
        bar.update(++processed);
      }
      const families = [...folders.values()].map((f) => f.view()).filter((v): v is FamilyView => v !== null);
      await out.end({ families });
    } else {
      const headPosition = await store.headPosition();
      bar.setTotal(headPosition);
      // --all filters on occurredAt only when asked to: [from, min(to, at)].
      const to = a.to === undefined ? a.at : a.at === undefined ? a.to : Math.min(a.to, a.at);
      const everything = a.from === undefined && to === undefined;
      const keep = inRange({ from: a.from, to });
      await out.begin({ at: isoOrNull(a.at), from: isoOrNull(a.from), to: isoOrNull(a.to), headPosition });
      if (a.format === 'ndjson') {
        // The export path of the library (libs/forensics ndjson.ts): where the events are in SQL it copies the
        // stored JSON text into the lines instead of parsing and re-serialising every event.
        await out.flush();
        await exportAllNdjson(store, io.stdout, {
          until: headPosition,
          occurred: everything ? undefined : { from: a.from, to },
          onProgress: (p) => bar.update(p.read, p.position / Math.max(1, headPosition)),
        });
      } else {
        for await (const page of readAllPages(store, { until: headPosition, pageSize: EXPORT_PAGE })) {
          for (const event of page) if (everything || keep(event)) await out.event(toPublicEvent(event));
          processed += page.length;
          bar.update(processed, page[page.length - 1].position / Math.max(1, headPosition));
        }
      }
      await out.end({});
    }
    await out.flush();
    bar.finish();
    return 0;
  } catch (error) {
    bar.clear();
    throw error;
  }
}

function folderFor(folders: Map<string, FamilyStateAt>, event: RecordedEvent, at: number): FamilyStateAt {
  let folder = folders.get(event.streamId);
  if (!folder) folders.set(event.streamId, (folder = new FamilyStateAt(at)));
  return folder;
}

/** Total events in these streams (for the progress bar), a few hundred streams per round trip. */
async function streamLengths(store: EventStore, streamIds: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < streamIds.length; i += 256) {
    const loaded = await Promise.all(streamIds.slice(i, i + 256).map((id) => store.loadStream(id)));
    for (const l of loaded) total += l.revision === undefined ? 0 : l.revision + 1;
  }
  return total;
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : iso(ms));

// ---------------------------------------------------------------------------------------------
// Output formats, written in chunks with back-pressure.

const FLUSH_AT = 64 * 1024;

class Output {
  private buffer = '';
  private count = 0;

  constructor(
    private readonly out: OutStream,
    private readonly format: Format,
  ) {}

  async begin(header: Record<string, unknown>): Promise<void> {
    if (this.format === 'json') {
      const head = JSON.stringify(header);
      this.buffer += `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"events":[`;
    } else if (this.format === 'table') {
      const scope = Object.entries(header)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k}=${v}`)
        .join('  ');
      this.buffer += `# replay ${scope}\n${tableHeader()}\n`;
    }
  }

  async event(event: PublicEvent): Promise<void> {
    if (this.format === 'ndjson') this.buffer += `${JSON.stringify(event)}\n`;
    else if (this.format === 'json') this.buffer += `${this.count > 0 ? ',' : ''}${JSON.stringify(event)}`;
    else this.buffer += `${tableRow(event)}\n`;
    this.count++;
    if (this.buffer.length >= FLUSH_AT) await this.flush();
  }

  async end(trailer: { state?: FamilyView | null; families?: FamilyView[] }): Promise<void> {
    if (this.format === 'json') {
      const rest = JSON.stringify(trailer);
      this.buffer += `]${rest.length > 2 ? `,${rest.slice(1)}` : '}'}\n`;
    } else if (this.format === 'table') {
      this.buffer += `# ${fmt(this.count)} event(s)\n`;
      if ('state' in trailer) this.buffer += stateBlock(trailer.state ?? null);
      if (trailer.families) {
        this.buffer += `\nfamilies (state as of the instant above):\n`;
        if (trailer.families.length === 0) this.buffer += '  (none)\n';
        for (const f of trailer.families) this.buffer += `  ${familyLine(f)}\n`;
      }
    }
    await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.buffer) return;
    const chunk = this.buffer;
    this.buffer = '';
    await writeChunk(this.out, chunk);
  }
}

const COLUMNS: [string, number][] = [
  ['POSITION', 9],
  ['OCCURRED AT', 24],
  ['TYPE', 26],
  ['FAMILY', 30],
  ['GEN', 5],
  ['IP', 16],
  ['ACTOR', 18],
];

function tableHeader(): string {
  return `${COLUMNS.map(([name, width]) => name.padEnd(width)).join(' ')} DETAIL`;
}

function cell(value: unknown, width: number): string {
  const text = value === undefined || value === null || value === '' ? '-' : String(value);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

type Data = Record<string, any>;

function tableRow(e: PublicEvent): string {
  const d = (e.data ?? {}) as Data;
  const context = d.context ?? e.metadata.context ?? {};
  const generation = d.generation ?? d.presentedGeneration ?? '';
  const values = [e.position, e.occurredAt, e.type, e.familyId, generation, context.ip, e.metadata.actor];
  return `${COLUMNS.map(([, width], i) => cell(values[i], width)).join(' ')} ${detail(e.type, d, context)}`;
}

function detail(type: string, d: Data, context: Data): string {
  const parts: string[] = [];
  switch (type) {
    case 'TokenFamilyIssued':
      parts.push(`scope="${(d.scope ?? []).join(' ')}"`, `idleExpiresAt=${d.idleExpiresAt}`, `absoluteExpiresAt=${d.absoluteExpiresAt}`);
      break;
    case 'TokenRotated':
      parts.push(`gen ${d.fromGeneration}→${d.generation}`, `scope="${(d.scope ?? []).join(' ')}"`, `idleExpiresAt=${d.idleExpiresAt}`);
      break;
    case 'TokenRotationReplayed':
      parts.push(`presented gen ${d.presentedGeneration}, handed out gen ${d.generation} again (grace)`);
      break;
    case 'TokenReuseDetected':
      parts.push(`presented gen ${d.presentedGeneration}, head was gen ${d.headGeneration}`);
      break;
    case 'RefreshRejected':
      parts.push(`reason=${d.reason}`, `presented gen ${d.presentedGeneration}`);
      // An aggregated record (a flood, tallied per interval): how many, when, from how many addresses.
      if (typeof d.count === 'number') parts.push(`count=${d.count}`, `from=${d.from}`, `to=${d.to}`, `addresses=${(d.sources ?? []).length + (d.otherSources ? '+' : '')}`);
      break;
    case 'TokenFamilyRevoked':
      parts.push(`reason=${d.reason}`, `accessTokensValidUntil=${d.accessTokensValidUntil}`);
      break;
    case 'TokenFamilyExpired':
      parts.push(`reason=${d.reason}`, `expiredAt=${d.expiredAt}`);
      break;
    case 'AccessTokenRevoked':
      parts.push(`jti=${d.jti}`, `expiresAt=${d.expiresAt}`);
      break;
    case 'FamilyLinkedToSubject':
      parts.push(`family ${d.familyId} (client ${d.clientId})`);
      break;
    case 'SubjectRevoked':
    case 'SubjectRevocationCompleted':
      parts.push(`reason=${d.reason}`, `${(d.familyIds ?? []).length} famil(ies)`);
      break;
    default:
      break;
  }
  if (context.deviceId) parts.push(`device=${context.deviceId}`);
  if (context.userAgent) parts.push(`ua="${String(context.userAgent).slice(0, 60)}"`);
  return parts.join('  ');
}

function stateBlock(state: FamilyView | null): string {
  if (!state) return '\nstate: the family did not exist yet at that instant\n';
  const lines = Object.entries(state).map(([k, v]) => `  ${k.padEnd(18)} ${v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `\nstate:\n${lines.join('\n')}\n`;
}

function familyLine(f: FamilyView): string {
  return [
    f.familyId,
    f.status.padEnd(7),
    `gen ${f.generation}`,
    `client ${f.clientId}`,
    `lastUsedAt ${f.lastUsedAt ?? '-'}`,
    f.revokedReason ? `revoked ${f.revokedAt} (${f.revokedReason})` : '',
    f.lastContext?.ip ? `ip ${f.lastContext.ip}` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

