/** The run's figures as plain-text tables for stdout. */
import type { BenchmarkReport } from './types.js';

function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function renderTables(r: BenchmarkReport): string {
  const parts: string[] = [];
  parts.push(
    table(
      ['path', 'Gbit/s', 'proxy CPU s/GB', 'p50 µs', 'p99 µs', 'conn/s', 'new-conn p99 µs', 'proxy CPU µs/conn'],
      r.results.map((p) => [
        p.name,
        fmt(p.gbps, 2),
        fmt(p.cpu_s_per_gb, 3),
        fmt(p.p50_us, 1),
        fmt(p.p99_us, 1),
        fmt(p.conns_per_s, 0),
        fmt(p.conn_p99_us, 0),
        fmt(p.cpu_us_per_conn, 0),
      ]),
    ),
  );
  if (r.pipe_sizes.length > 0) {
    parts.push(
      table(
        ['pair-native pipe size', 'Gbit/s', 'proxy CPU s/GB'],
        r.pipe_sizes.map((p) => [`${p.pipe_size / 1024} KiB`, fmt(p.gbps, 2), fmt(p.cpu_s_per_gb, 3)]),
      ),
    );
  }
  for (const m of r.memory) {
    parts.push(
      table(
        [`${m.path}: ${m.tunnels} idle tunnels`, 'RSS before KiB', 'RSS open KiB', 'KiB/tunnel', 'fds before', 'fds open', 'fds after'],
        m.processes.map((p, i) => [
          `process ${i === 0 ? 'outer' : i === 1 ? 'inner' : i} (pid ${p.pid})`,
          String(p.rssBeforeKiB),
          String(p.rssOpenKiB),
          fmt(p.kibPerTunnel, 2),
          String(p.fdsBefore),
          String(p.fdsOpen),
          String(p.fdsAfter),
        ]),
      ),
    );
  }
  if (r.targets.length > 0) {
    parts.push(
      table(
        ['target', 'wanted', 'measured', 'met'],
        r.targets.map((t) => [t.target, t.wanted, t.measured, t.met === null ? '–' : t.met ? 'yes' : 'NO']),
      ),
    );
  }
  for (const s of r.skipped) parts.push(`skipped ${s.name}: ${s.reason}`);
  return parts.join('\n\n');
}
