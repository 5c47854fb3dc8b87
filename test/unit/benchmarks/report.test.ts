/** The benchmark's arithmetic and reports (no process is started here). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, percentile } from '../../../benchmarks/lib/stats.js';
import { renderChart } from '../../../benchmarks/report/chart.js';
import { renderTables } from '../../../benchmarks/report/table.js';
import { checkTargets } from '../../../benchmarks/report/targets.js';
import type { BenchmarkReport, PathResult } from '../../../benchmarks/report/types.js';

function result(name: string, gbps: number, cpu: number | null, p50: number, conns = 1000, connP99 = 900): PathResult {
  return {
    name,
    gbps,
    cpu_s_per_gb: cpu,
    p50_us: p50,
    p99_us: p50 * 2,
    conns_per_s: conns,
    conn_p99_us: connP99,
    cpu_us_per_conn: 100,
    trials: {
      gbps: [gbps],
      cpu_s_per_gb: cpu === null ? [] : [cpu],
      p50_us: [p50],
      p99_us: [p50 * 2],
      conns_per_s: [conns],
      conn_p99_us: [connP99],
      cpu_us_per_conn: [100],
    },
  };
}

const results = [
  result('direct', 40, null, 30),
  result('pair-native', 20, 0.3, 80, 1200, 1000),
  result('pair-js', 3, 3.6, 130),
  result('socat-2hop', 10, 2.4, 90),
  result('haproxy-2hop', 8, 1.0, 75, 1000, 800),
];
const memory = [
  {
    path: 'pair-native',
    tunnels: 100,
    fdsReturned: true,
    processes: [
      { pid: 1, rssBeforeKiB: 1000, rssOpenKiB: 1800, kibPerTunnel: 8, fdsBefore: 20, fdsOpen: 220, fdsAfter: 20 },
      { pid: 2, rssBeforeKiB: 1000, rssOpenKiB: 3500, kibPerTunnel: 25, fdsBefore: 20, fdsOpen: 220, fdsAfter: 20 },
    ],
  },
];

describe('benchmark reports', () => {
  it('median and nearest-rank percentiles', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10), 1);
    assert.ok(Number.isNaN(median([])));
  });

  it('evaluates the issue targets from one run', () => {
    const checks = checkTargets(results, memory);
    const byName = (prefix: string) => checks.find((c) => c.target.startsWith(prefix))!;
    assert.equal(byName('throughput pair-native ≥ 1.5× haproxy').met, true);
    assert.equal(byName('throughput pair-native ≥ 2.5× socat').met, false);
    assert.equal(byName('throughput pair-native ≥ 1.4× pair-js').met, true);
    assert.equal(byName('proxy CPU per GB').met, true);
    assert.equal(byName('added p50 latency').met, false);
    assert.equal(byName('added p50 latency').measured, '50.0 µs');
    assert.equal(byName('RSS per idle tunnel').met, false, 'the worst process decides');
    assert.equal(byName('fds back to baseline').met, true);
    assert.equal(byName('new connections/s').met, true);
    assert.equal(byName('new connections/s').measured, '1.20×');
    assert.equal(byName('fresh-connection request p99').met, false);
    assert.equal(byName('fresh-connection request p99').measured, '1000 µs');
  });

  it('marks a target it cannot evaluate as n/a instead of failing it', () => {
    const checks = checkTargets(
      results.filter((r) => r.name !== 'haproxy-2hop'),
      [],
    );
    const c = checks.find((x) => x.target.includes('haproxy-2hop'))!;
    assert.equal(c.met, null);
    assert.equal(c.measured, 'n/a');
  });

  it('renders the table and a well-formed SVG with one bar per path', () => {
    const report: BenchmarkReport = {
      started: '2026-01-01T00:00:00Z',
      host: { cpus: 2, kernel: '6.x', node: 'v20' },
      settings: { trials: 5 },
      results,
      memory,
      pipe_sizes: [{ pipe_size: 262144, gbps: 20, cpu_s_per_gb: 0.3 }],
      targets: checkTargets(results, memory),
      skipped: [{ name: 'x', reason: 'y missing' }],
    };
    const text = renderTables(report);
    assert.match(text, /^pair-native\s+20\.00\s+0\.300\s+80\.0\s+160\.0\s+1200\s+1000\s+100$/m);
    assert.match(text, /skipped x: y missing/);
    const svg = renderChart(report);
    assert.match(svg, /^<svg [^>]*>.*<\/svg>\n$/s);
    assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 5 + 4 + 5 + 5 + 5 + 2 + 1);
  });
});
