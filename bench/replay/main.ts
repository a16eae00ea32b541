/**
 * `npm run bench:replay`: replay throughput and memory of the forensics export on PostgreSQL.
 *
 * 1. Seeds a fresh schema with N events (default 1,000,000) shaped like real ones, hash-chained
 *    (not timed).
 * 2. Runs `token-ledger replay --all --format ndjson` (the CLI command, stdout → /dev/null) in a
 *    child process, R times: events/s and the child's peak RSS. Targets: ≥ 100,000 events/s and
 *    < 300 MB.
 * 3. Checks the output: one line per event (SHA-256 of a full export), and the same bytes as the
 *    parsing path (JSON.stringify(toPublicEvent(e))) on the first 50,000 events.
 * 4. Runs `token-ledger verify --all` once the same way (informational: hashing every event).
 * 5. Drops the schema (unless --keep).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { dropPostgresSchema, PostgresEventStore } from '@token-ledger/event-store';
import type { ChildMode, ChildResult } from './child';
import { seed } from './seed';

const USAGE = `Usage: npm run bench:replay -- [options]

Seeds a fresh PostgreSQL schema with hash-chained events shaped like the ledger's, then measures
\`token-ledger replay --all --format ndjson\` to /dev/null (events/s, peak RSS of that process) and
\`token-ledger verify --all\`.

Options:
  --events N          events to seed (default 1000000)
  --runs N            export runs; the median is reported (default 3)
  --database-url URL  default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test
  --keep              keep the schema afterwards (its name is printed)
  --reuse SCHEMA      measure an already seeded schema (kept) instead of seeding a new one
  --json FILE         also write the results as JSON
  -h, --help          this help

Targets: export >= 100,000 events/s and peak RSS < 300 MB; exit status 1 when one is missed.`;

const TARGET_EVENTS_PER_SEC = 100_000;
const TARGET_RSS_MB = 300;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function runChild(mode: ChildMode, url: string, schema: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const devnull = fs.openSync('/dev/null', 'w');
    const child = fork(path.join(__dirname, 'child.js'), [mode, url, schema], { stdio: ['ignore', devnull, 'inherit', 'ipc'] });
    let result: ChildResult | undefined;
    child.on('message', (m) => (result = m as ChildResult));
    child.on('error', reject);
    child.on('exit', (code) => {
      fs.closeSync(devnull);
      if (result) resolve(result);
      else reject(new Error(`${mode} run exited with ${code} and no result`));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const n = (x: number) => Math.round(x).toLocaleString('en-US');

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      events: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '3' },
      'database-url': { type: 'string' },
      keep: { type: 'boolean', default: false },
      reuse: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const count = Number(values.events);
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(runs) || runs < 1) {
    process.stderr.write(`--events and --runs must be positive integers\n\n${USAGE}\n`);
    return 2;
  }
  const url = values['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = values.reuse ?? `tl_bench_replay_${randomBytes(4).toString('hex')}`;
  const keep = values.keep || values.reuse !== undefined;

  log(`bench:replay: schema ${schema} on ${url.replace(/\/\/[^@]*@/, '//…@')}`);
  const store = await PostgresEventStore.open({ url, schema });
  await store.close();
  const pool = new Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 2 });
  try {
    const seedStart = Date.now();
    let last = 0;
    const seeded = values.reuse
      ? {
          events: Number((await pool.query('select count(*) as n from tl_events')).rows[0].n),
          streams: Number((await pool.query('select count(*) as n from tl_streams')).rows[0].n),
        }
      : await seed(pool, count, (done) => {
          if (Date.now() - last > 5000) {
            last = Date.now();
            log(`  seeding… ${n(done)} / ${n(count)} events`);
          }
        });
    log(`  ${values.reuse ? 'reusing' : 'seeded'} ${n(seeded.events)} events in ${n(seeded.streams)} streams${values.reuse ? '' : ` in ${((Date.now() - seedStart) / 1000).toFixed(1)} s (not measured)`}`);
    await pool.end();

    log(`  load average before the runs: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} CPUs; other work on the machine slows the runs)`);
    const exports: ChildResult[] = [];
    for (let i = 1; i <= runs; i++) {
      const r = await runChild('export', url, schema);
      if (r.exitCode !== 0) throw new Error(`export run ${i} exited with ${r.exitCode}`);
      exports.push(r);
      log(`  export run ${i}/${runs}: ${n(r.events / r.seconds)} events/s (${r.seconds.toFixed(2)} s), ${r.cpuMicrosPerEvent.toFixed(1)} µs CPU/event, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    }
    // The export really wrote one line per event (the measured runs write to /dev/null).
    const digest = await runChild('digest', url, schema);
    const same = digest.exitCode === 0 && digest.lines === seeded.events;
    log(`  output check: ${n(digest.lines!)} NDJSON lines (sha256 ${digest.digest!.slice(0, 16)}…) for ${n(seeded.events)} events: ${same ? 'ok' : 'WRONG'}`);
    // And wrote the same bytes as the parsing path (JSON.stringify(toPublicEvent(e))), on the first events.
    const compare = await runChild('compare', url, schema);
    log(`  byte check: copy path vs JSON.stringify(toPublicEvent(e)) on the first ${n(compare.compared!)} events: ${compare.same ? 'identical' : 'DIFFERENT'}`);
    const verify = await runChild('verify', url, schema);
    log(`  verify --all: ${n(verify.events / verify.seconds)} events/s (${verify.seconds.toFixed(2)} s), ${verify.cpuMicrosPerEvent.toFixed(1)} µs CPU/event, peak RSS ${verify.maxRssMb.toFixed(0)} MB, exit ${verify.exitCode}`);

    const rate = median(exports.map((r) => r.events / r.seconds));
    const rss = Math.max(...exports.map((r) => r.maxRssMb));
    const ok = rate >= TARGET_EVENTS_PER_SEC && rss < TARGET_RSS_MB && verify.exitCode === 0 && same && compare.same === true;
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
    process.stdout.write(
      [
        '',
        `replay benchmark — ${n(seeded.events)} events, ${n(seeded.streams)} streams, PostgreSQL, node ${process.version}, ${os.cpus().length} × ${cpu}`,
        '',
        '| run | events/s | time | CPU of the process | peak RSS | target |',
        '|---|---:|---:|---:|---:|---|',
        `| replay --all --format ndjson > /dev/null (median of ${runs}) | ${n(rate)} | ${median(exports.map((r) => r.seconds)).toFixed(2)} s | ${median(exports.map((r) => r.cpuMicrosPerEvent)).toFixed(1)} µs/event | ${rss.toFixed(0)} MB (max) | ≥ ${n(TARGET_EVENTS_PER_SEC)}/s, < ${TARGET_RSS_MB} MB: ${ok ? 'met' : 'MISSED'} |`,
        `| verify --all (SHA-256 of every event) | ${n(verify.events / verify.seconds)} | ${verify.seconds.toFixed(2)} s | ${verify.cpuMicrosPerEvent.toFixed(1)} µs/event | ${verify.maxRssMb.toFixed(0)} MB | ${verify.exitCode === 0 ? 'chain intact' : 'FAILED'} |`,
        '',
        `export runs: ${exports.map((r) => `${n(r.events / r.seconds)}/s`).join(', ')}; output: ${n(digest.lines!)} lines for ${n(seeded.events)} events, the same bytes as JSON.stringify(toPublicEvent(e)) on the first ${n(compare.compared!)}: ${compare.same ? 'yes' : 'NO'}`,
        `load average during the run: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`,
        '',
      ].join('\n'),
    );
    if (values.json) {
      fs.writeFileSync(values.json, JSON.stringify({ events: seeded.events, streams: seeded.streams, exports, digest, verify, node: process.version, cpu }, null, 2));
    }
    return ok ? 0 : 1;
  } finally {
    await pool.end().catch(() => undefined);
    if (keep) log(`  kept schema ${schema}`);
    else await dropPostgresSchema(url, schema);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    process.stderr.write(`bench:replay: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
