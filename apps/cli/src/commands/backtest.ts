/**
 * `token-ledger backtest --rules FILE`: runs history from the event store through candidate anomaly
 * rules with no side effects (nothing appended, nothing revoked) and prints what would have fired.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { backtest, loadRulesFile, openGeoLocator, RulesFileError, type Detection } from '@token-ledger/anomaly';
import { toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import { parseIsoInstant, readAllPages } from '@token-ledger/forensics';
import { positionBefore } from '@token-ledger/messaging';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import { processIo, storeOpener, type CliIo } from './cli-io';
import { fmt, ProgressBar } from './progress';

export const HELP = `Usage: token-ledger backtest --rules FILE [--from ISO] [--to ISO] [--format table|json]
                          [--progress]

Replays the event store's history through the anomaly rules in FILE (the same JSON format as
LEDGER_ANOMALY_RULES; rules and fields it leaves out keep their defaults) with no side effects:
nothing is appended, nothing is revoked, no webhook is called. Prints every anomaly that would have
fired, in event order, and a count per rule. Rules run on event time, so the result does not depend
on when the backtest runs.

  --rules FILE    candidate rules (required)
  --from ISO      start with events that occurred at or after this instant (windows start empty)
  --to ISO        stop after events that occurred up to this instant
  --format F      table (default) or json ({"detections": [...], "summary": {...}})
  --progress      progress bar on stderr even when stderr is not a terminal (shown on a terminal)
  -h, --help      this help

Geolocation uses the bundled city database, or LEDGER_GEOIP_DB. The embedded store allows one
process per data directory: stop the server first, or use PostgreSQL.

Exit status: 0 done, 2 usage or invalid rules file, 3 the store could not be opened or read.
`;

class UsageError extends Error {}

interface BacktestArgs {
  rulesFile: string;
  from?: number;
  to?: number;
  format: 'table' | 'json';
  progress: boolean;
}

function parse(args: string[]): BacktestArgs | 'help' {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        rules: { type: 'string' },
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
  const extra = positionals[0] === 'backtest' ? positionals.slice(1) : positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!values.rules) throw new UsageError('--rules FILE is required');
  if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format must be table or json (got "${values.format}")`);
  const instant = (name: string, raw: string | undefined) => {
    if (raw === undefined) return undefined;
    const ms = parseIsoInstant(raw);
    if (ms === undefined) throw new UsageError(`--${name} must be an ISO-8601 instant with an offset, e.g. 2024-05-01T12:00:00Z`);
    return ms;
  };
  const from = instant('from', values.from);
  const to = instant('to', values.to);
  if (from !== undefined && to !== undefined && from > to) throw new UsageError('--from is after --to');
  return { rulesFile: values.rules, from, to, format: values.format, progress: values.progress };
}

/** Events recorded this long after --to are past it for sure (occurredAt is stamped before commit). */
const CLOCK_SLACK_MS = 60_000;

export async function run(args: string[], config: LedgerConfig, logger: Logger, io: CliIo = processIo()): Promise<number> {
  let a: BacktestArgs;
  let rules;
  try {
    const parsed = parse(args);
    if (parsed === 'help') {
      io.stdout.write(HELP);
      return 0;
    }
    a = parsed;
    rules = loadRulesFile(a.rulesFile);
  } catch (error) {
    if (error instanceof RulesFileError) {
      io.stderr.write(`token-ledger backtest: ${error.message}\n`);
      return 2;
    }
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`token-ledger backtest: ${error.message}\n\n${HELP}`);
    return 2;
  }
  const geo = await openGeoLocator(config.anomaly.geoDbPath ? { path: config.anomaly.geoDbPath } : {});
  let opened: Awaited<ReturnType<NonNullable<CliIo['openStore']>>>;
  try {
    opened = await storeOpener(io)(config, logger);
  } catch (error) {
    io.stderr.write(`token-ledger backtest: cannot open the store: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  }
  const bar = new ProgressBar(io.stderr, ProgressBar.wanted(io.stderr, a.progress), 'backtest', 0);
  const detections: Detection[] = [];
  let events = 0;
  try {
    const store = opened.store;
    const head = await store.headPosition();
    const after = a.from === undefined ? 0 : await positionBefore(store, new Date(a.from - CLOCK_SLACK_MS));
    bar.setTotal(Math.max(0, head - after));
    const inRange = async function* (): AsyncGenerator<PublicEvent[]> {
      for await (const page of readAllPages(store, { after, until: head })) {
        const batch: PublicEvent[] = [];
        let past = false;
        for (const recorded of page) {
          if (a.to !== undefined && recorded.recordedAt.getTime() > a.to + CLOCK_SLACK_MS) past = true;
          if (recorded.type === 'AnomalyDetected') continue;
          const event = toPublicEvent(recorded);
          const at = Date.parse(event.occurredAt);
          if ((a.from !== undefined && at < a.from) || (a.to !== undefined && at > a.to)) continue;
          batch.push(event);
        }
        events += page.length;
        yield batch;
        bar.update(events, (page[page.length - 1].position - after) / Math.max(1, head - after));
        if (past) return;
      }
    };
    for await (const d of backtest(inRange(), { rules, locate: (ip) => geo.locate(ip) })) detections.push(d);
    bar.finish();
  } catch (error) {
    bar.clear();
    io.stderr.write(`token-ledger backtest: cannot read the store: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  } finally {
    await opened.close().catch(() => undefined);
  }
  const summary = summarize(detections, events);
  if (a.format === 'json') io.stdout.write(`${JSON.stringify({ detections: detections.map(publicDetection), summary }, null, 2)}\n`);
  else io.stdout.write(table(detections, summary));
  return 0;
}

function publicDetection(d: Detection): Record<string, unknown> {
  return {
    anomalyId: d.anomalyId,
    rule: d.rule,
    severity: d.severity,
    action: d.action,
    scope: d.scope,
    scopeKey: d.scopeKey,
    familyId: d.familyId,
    subject: d.subject,
    clientId: d.clientId,
    occurredAt: d.trigger.occurredAt,
    position: d.trigger.position,
    evidence: d.evidence,
  };
}

function summarize(detections: Detection[], events: number): { events: number; detections: number; byRule: Record<string, number> } {
  const byRule: Record<string, number> = {};
  for (const d of detections) byRule[d.rule] = (byRule[d.rule] ?? 0) + 1;
  return { events, detections: detections.length, byRule };
}

function table(detections: Detection[], summary: ReturnType<typeof summarize>): string {
  const rows = detections.map((d) => [
    d.trigger.occurredAt,
    String(d.trigger.position),
    d.rule,
    d.severity,
    d.action,
    d.scope === 'family' ? d.familyId : `${d.scope} ${d.scopeKey}`,
    d.subject,
    brief(d),
  ]);
  const header = ['occurredAt', 'position', 'rule', 'severity', 'action', 'about', 'subject', 'evidence'];
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i].length))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  const out = rows.length > 0 ? [line(header), ...rows.map(line)] : ['no anomaly would have fired'];
  const counts = Object.entries(summary.byRule).map(([rule, n]) => `${rule} ${fmt(n)}`);
  out.push('', `${fmt(summary.detections)} anomaly(ies) over ${fmt(summary.events)} event(s)${counts.length ? `: ${counts.join(', ')}` : ''}`);
  return `${out.join('\n')}\n`;
}

/** One line of the evidence for the table (the JSON format has all of it). */
function brief(d: Detection): string {
  const e = d.evidence as Record<string, any>;
  switch (d.rule) {
    case 'impossible_travel':
      return `${e.from.city ?? e.from.country} → ${e.to.city ?? e.to.country}, ${fmt(e.distanceKm)} km in ${fmt(e.elapsedSeconds)} s (${e.speedKmh === null ? '∞' : fmt(e.speedKmh)} km/h)`;
    case 'geo_mismatch':
      return `${e.fromCountry} → ${e.toCountry}`;
    case 'refresh_burst':
    case 'failed_refresh_storm':
      return `${fmt(e.count)} in ${fmt(e.windowSeconds)} s (max ${fmt(e.max)})`;
    case 'device_change':
      return Object.entries(e).map(([k, v]: [string, any]) => `${k}: ${v.from} → ${v.to}`).join('; ');
    case 'reuse_detected':
      return `generation ${e.presentedGeneration} presented, head ${e.headGeneration}${e.ip ? ` from ${e.ip}` : ''}`;
    default:
      return '';
  }
}
