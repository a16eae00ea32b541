import { attachRatios, benchMeta, CellResult, medianOverRounds, renderTable } from '../bench/refresh/report';
import type { LoadResult } from '../bench/refresh/load';

// bench:refresh --rounds: every row runs once per round, ratios are taken within a round (never
// between rows that ran minutes apart), and the summary is each row's median over its rounds.
const load = (rotationsPerSec: number, p99: number): LoadResult => ({
  chains: 64,
  measuredSec: 10,
  ok: rotationsPerSec * 10,
  errors: 0,
  errorKinds: {},
  errorSamples: [],
  warmupOk: 0,
  warmupErrors: 0,
  warmupSec: 10,
  warmupSteady: true,
  warmupWindows: [],
  chainRestarts: 0,
  rotationsPerSec,
  latencyMs: { count: rotationsPerSec * 10, min: 1, mean: p99 / 2, p50: p99 / 2, p95: p99 * 0.9, p99, max: p99 * 1.2 },
  perSecond: [],
  trend: 1,
  serverCpuPct: 90,
  driverCpuPct: 10,
  otherCpuPct: 50,
});
const row = (target: CellResult['target'], round: number, rate: number, p99: number, rateLimits: 'on' | 'off' = 'on'): CellResult => ({
  target,
  chains: 64,
  round,
  status: 'ok',
  ...(target === 'postgres' || target === 'embedded' ? { rateLimits } : {}),
  load: load(rate, p99),
});

describe('bench:refresh --rounds', () => {
  const results: CellResult[] = [
    row('postgres', 1, 1500, 80),
    row('reference', 1, 2000, 50),
    row('postgres', 2, 2000, 60),
    row('reference', 2, 1600, 60),
    row('postgres', 3, 1800, 70),
    row('reference', 3, 2400, 40),
    { target: 'reference', chains: 64, round: 4, status: 'failed', error: 'did not start' },
  ];
  attachRatios(results);

  it('takes each ratio within its round', () => {
    expect(results.filter((r) => r.target === 'postgres').map((r) => r.vsReference?.rotationsPerSec)).toEqual([0.75, 1.25, 0.75]);
  });

  it('summarises each row by its median over the rounds it completed, ratios included', () => {
    const [pg, ref] = medianOverRounds(results);
    expect(pg).toMatchObject({ target: 'postgres', rounds: 3, rotationsPerSec: 1800, p50Ms: 35, p99Ms: 70, perRoundRotationsPerSec: [1500, 2000, 1800] });
    expect(pg.vsReference).toEqual({ rotationsPerSec: 0.75, p99: 1.6 });
    expect(ref).toMatchObject({ target: 'reference', rounds: 3, rotationsPerSec: 2000, p99Ms: 50 });
    expect(ref.vsReference).toBeUndefined();
  });

  it('prints every round and the medians', () => {
    const meta = benchMeta({ warmup: 'steady', durationSec: 10, rounds: 4, chains: [64], targets: ['postgres', 'reference'], rateLimits: ['on'], tracing: 'off', scrape: 'none' });
    const table = renderTable(meta, results);
    expect(table).toContain('token-ledger (postgres) #2');
    expect(table).toMatch(/median over rounds\s+chains\s+rounds/);
    expect(table).toMatch(/token-ledger \(postgres\)\s+64\s+3\/4\s+1800\.0\s+1500 2000 1800\s+35\.00\s+70\.00\s+0\.75×?/);
  });

  it('sets the embedded store against PostgreSQL within each round, with the same rate limits', () => {
    const rows: CellResult[] = [
      row('embedded', 1, 900, 120),
      row('postgres', 1, 1200, 80),
      row('embedded', 1, 1000, 100, 'off'),
      row('postgres', 1, 1000, 100, 'off'),
      row('embedded', 2, 1600, 90),
      row('postgres', 2, 2000, 60),
      row('embedded', 3, 1400, 70),
      row('postgres', 3, 1750, 70),
    ];
    attachRatios(rows);
    expect(rows.filter((r) => r.target === 'embedded').map((r) => r.vsPostgres?.rotationsPerSec)).toEqual([0.75, 1, 0.8, 0.8]);
    expect(rows[0].vsPostgres?.p99).toBe(1.5);
    expect(rows.filter((r) => r.target === 'postgres').every((r) => r.vsPostgres === undefined)).toBe(true);
    const meta = benchMeta({ warmup: 'steady', durationSec: 10, rounds: 3, chains: [64], targets: ['embedded', 'postgres'], rateLimits: ['on', 'off'], tracing: 'off', scrape: 'none' });
    const table = renderTable(meta, rows);
    expect(table).toContain('embedded ÷ postgres, rotations/s (p99), within each round:');
    expect(table).toContain('  ×64: 0.75× (p99 1.50×), 0.80× (p99 1.50×), 0.80× (p99 1.00×); median 0.80× (p99 1.50×)');
    expect(table).toContain('  ×64, limits off: 1.00× (p99 1.00×)');
  });
});
