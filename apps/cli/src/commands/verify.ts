/**
 * `token-ledger verify`: checks the hash chain of one family or of the whole store and names the
 * first altered, missing or reordered event. Streaming, bounded memory (one page plus each stream's
 * last link).
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { parseKek } from '@token-ledger/crypto';
import { deriveChainMacKey, familyStreamId } from '@token-ledger/envelope';
import { describeProblem, verifyChain, type VerifyReport, type VerifyTarget } from '@token-ledger/forensics';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import { processIo, storeOpener, type CliIo } from './cli-io';
import { fmt, ProgressBar } from './progress';

export const HELP = `Usage: token-ledger verify [--family ID | --all] [--format text|json] [--progress]
                        [--allow-unchained] [--allow-unkeyed] [--max-problems N]

Checks the tamper-evident hash chain: every event's metadata carries hash = SHA-256 of its canonical
form and prevHash = the hash of the previous event of its stream. Reports the first altered,
missing (deleted), reordered or re-linked event with its stream, revision and global position.
Each aggregate stream is also replayed and compared with its stored snapshot (an edited snapshot,
e.g. a family un-revoked, is reported as a snapshot mismatch).

With LEDGER_KEK set (as for serve), every event's headMac — an HMAC of its stream, revision and
hash under a key derived from LEDGER_KEK — is checked too, so a stream rewritten with recomputed
SHA-256 hashes is detected. Without LEDGER_KEK there is no secret outside the database: the chain
is then only self-consistent, and verify says so.

  --family ID          one family's stream
  --all                every stream, in global order (the default)
  --format F           text (default) or json (the full report)
  --progress           progress bar on stderr even when stderr is not a terminal (it is shown
                       automatically on a terminal); events/s and ETA
  --allow-unchained    accept events without a hash at the start of a stream (written before the
                       hash chain existed); they are counted but cannot be verified
  --allow-unkeyed      with LEDGER_KEK: accept events without a headMac (written before LEDGER_KEK
                       was set); only their plain hash is checked
  --max-problems N     problems listed (default 20; all are counted)
  -h, --help           this help

The embedded store allows one process per data directory: stop the server first (or use
PostgreSQL, where verify runs beside a live server; events appended after it started are left for
the next run).

Exit status: 0 the chain is intact, 1 tampering found (or no such family), 2 usage,
3 the store could not be opened or read (e.g. the embedded store is in use by a server).
`;

class UsageError extends Error {}

interface VerifyArgs {
  target: VerifyTarget;
  format: 'text' | 'json';
  progress: boolean;
  allowUnchained: boolean;
  allowUnkeyed: boolean;
  maxProblems: number;
}

function parse(args: string[]): VerifyArgs | 'help' {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        family: { type: 'string' },
        all: { type: 'boolean', default: false },
        format: { type: 'string', default: 'text' },
        progress: { type: 'boolean', default: false },
        'allow-unchained': { type: 'boolean', default: false },
        'allow-unkeyed': { type: 'boolean', default: false },
        'max-problems': { type: 'string', default: '20' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  // The command's own name may be passed along (argv from the command word on); nothing else.
  const extra = positionals[0] === 'verify' ? positionals.slice(1) : positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (values.family !== undefined && values.all) throw new UsageError('give either --family ID or --all, not both');
  if (values.family === '') throw new UsageError('--family needs a value');
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError(`--format must be text or json (got "${values.format}")`);
  const maxProblems = Number(values['max-problems']);
  if (!Number.isSafeInteger(maxProblems) || maxProblems < 1) throw new UsageError('--max-problems must be a positive integer');
  return {
    target: values.family !== undefined ? { familyId: values.family } : { all: true },
    format: values.format,
    progress: values.progress,
    allowUnchained: values['allow-unchained'],
    allowUnkeyed: values['allow-unkeyed'],
    maxProblems,
  };
}

/** `token-ledger verify …`; returns 0 (intact), 1 (tampered or unknown family), 2 (usage) or 3 (store unavailable). */
export async function run(args: string[], config: LedgerConfig, logger: Logger, io: CliIo = processIo()): Promise<number> {
  let parsed: VerifyArgs | 'help';
  try {
    parsed = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`token-ledger verify: ${error.message}\n\n${HELP}`);
    return 2;
  }
  if (parsed === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  const a = parsed;
  let macKey: Buffer | undefined;
  try {
    macKey = config.kek ? deriveChainMacKey(parseKek(config.kek)) : undefined;
  } catch (error) {
    io.stderr.write(`token-ledger verify: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  let opened: Awaited<ReturnType<NonNullable<CliIo['openStore']>>>;
  try {
    opened = await storeOpener(io)(config, logger);
  } catch (error) {
    // Not a verdict on the chain: keep 1 for "tampered".
    io.stderr.write(`token-ledger verify: cannot open the store: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  }
  const bar = new ProgressBar(io.stderr, ProgressBar.wanted(io.stderr, a.progress), 'verify', 0);
  let report: VerifyReport | null;
  try {
    if ('familyId' in a.target && bar.enabled) {
      const loaded = await opened.store.loadStream(familyStreamId(a.target.familyId));
      bar.setTotal((loaded.revision ?? -1) + 1);
    }
    report = await verifyChain(opened.store, a.target, {
      allowUnchained: a.allowUnchained,
      macKey,
      allowUnkeyed: a.allowUnkeyed,
      maxProblems: a.maxProblems,
      onProgress: ({ events, position, headPosition }) => {
        if ('all' in a.target) {
          bar.setTotal(headPosition);
          bar.update(events, position / Math.max(1, headPosition));
        } else {
          bar.update(events);
        }
      },
    });
    bar.finish();
  } catch (error) {
    bar.clear();
    io.stderr.write(`token-ledger verify: cannot read the store: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  } finally {
    await opened.close().catch(() => undefined);
  }

  if (report === null) {
    const id = 'familyId' in a.target ? a.target.familyId : '';
    if (a.format === 'json') io.stdout.write(`${JSON.stringify({ ok: false, error: 'not_found', familyId: id })}\n`);
    io.stderr.write(`token-ledger verify: no family ${id}\n`);
    return 1;
  }
  if (a.format === 'json') {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    io.stdout.write(textReport(report, a));
  }
  return report.ok ? 0 : 1;
}

function textReport(r: VerifyReport, a: VerifyArgs): string {
  const what = 'familyId' in a.target ? `family ${a.target.familyId}` : 'all streams';
  const scope = `${fmt(r.events)} event(s) in ${fmt(r.streams)} stream(s)${'all' in a.target ? ` up to position ${fmt(r.headPosition)}` : ''}`;
  const unchained =
    (r.unchained > 0 ? `\nnote: ${fmt(r.unchained)} event(s) carry no hash (written before the hash chain) and cannot be verified\n` : '') +
    (r.keyed
      ? r.unkeyed > 0
        ? `note: ${fmt(r.unkeyed)} event(s) carry no headMac (written before LEDGER_KEK was set): only their plain hash is checked\n`
        : ''
      : 'warning: LEDGER_KEK is not set: the chain is only self-consistent; a stream rewritten with recomputed hashes would not be detected\n');
  if (r.ok) return `verify ${what}: OK — hash chain intact${r.keyed ? ', head MACs valid' : ''}, ${scope}\n${unchained}`;
  const lines = [
    `verify ${what}: TAMPERED — ${fmt(r.problemCount)} problem(s) in ${scope}`,
    `first bad spot: ${describeProblem(r.firstProblem!)}`,
  ];
  if (r.problems.length > 1) {
    lines.push('all problems found (by position):');
    for (const p of r.problems) lines.push(`  - ${describeProblem(p)}`);
    if (r.problemCount > r.problems.length) lines.push(`  … and ${fmt(r.problemCount - r.problems.length)} more`);
  }
  return `${lines.join('\n')}\n${unchained}`;
}
