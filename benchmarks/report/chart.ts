/** The run's figures as one SVG page of bar charts (one panel per measure). */
import type { BenchmarkReport } from './types.js';

interface Bar {
  label: string;
  value: number | null;
}

const COLORS: Record<string, string> = {
  direct: '#7f7f7f',
  'pair-native': '#1f77b4',
  'pair-js': '#aec7e8',
  'socat-2hop': '#ff7f0e',
  'haproxy-2hop': '#2ca02c',
};

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(title: string, unit: string, bars: Bar[], x: number, y: number, width: number): { svg: string; height: number } {
  const rowHeight = 22;
  const labelWidth = 120;
  const plotWidth = width - labelWidth - 80;
  const max = Math.max(...bars.map((b) => b.value ?? 0), 1e-9);
  const rows = bars.map((b, i) => {
    const ry = y + 28 + i * rowHeight;
    const w = b.value === null ? 0 : Math.max(1, (b.value / max) * plotWidth);
    const value = b.value === null ? 'n/a' : b.value >= 100 ? b.value.toFixed(0) : b.value.toFixed(b.value >= 10 ? 1 : 2);
    return (
      `<text x="${x + labelWidth - 6}" y="${ry + 14}" text-anchor="end">${escape(b.label)}</text>` +
      `<rect x="${x + labelWidth}" y="${ry + 2}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${COLORS[b.label.split(' ')[0]!] ?? '#9467bd'}"/>` +
      `<text x="${x + labelWidth + w + 6}" y="${ry + 14}">${value}</text>`
    );
  });
  const height = 36 + bars.length * rowHeight;
  return { svg: `<text x="${x}" y="${y + 16}" font-weight="bold">${escape(title)} (${escape(unit)})</text>${rows.join('')}`, height };
}

export function renderChart(r: BenchmarkReport): string {
  const width = 560;
  const panels: { title: string; unit: string; bars: Bar[] }[] = [
    {
      title: 'Bulk throughput, 1 stream',
      unit: 'Gbit/s, higher is better',
      bars: r.results.map((p) => ({ label: p.name, value: p.gbps })),
    },
    {
      title: 'Proxy CPU per GB moved',
      unit: 's/GB, lower is better',
      bars: r.results.filter((p) => p.name !== 'direct').map((p) => ({ label: p.name, value: p.cpu_s_per_gb })),
    },
    {
      title: 'Request/response latency p50',
      unit: 'µs, lower is better',
      bars: r.results.map((p) => ({ label: p.name, value: p.p50_us })),
    },
    {
      title: 'Request/response latency p99',
      unit: 'µs, lower is better',
      bars: r.results.map((p) => ({ label: p.name, value: p.p99_us })),
    },
    {
      title: 'New connections',
      unit: 'per second, higher is better',
      bars: r.results.map((p) => ({ label: p.name, value: p.conns_per_s })),
    },
  ];
  if (r.memory.length > 0) {
    panels.push({
      title: 'RSS per idle tunnel',
      unit: 'KiB, lower is better',
      bars: r.memory.flatMap((m) =>
        m.processes.map((p, i) => ({ label: `${m.path} ${i === 0 ? 'outer' : 'inner'}`, value: p.kibPerTunnel })),
      ),
    });
  }
  if (r.pipe_sizes.length > 0) {
    panels.push({
      title: 'pair-native by pipe size',
      unit: 'Gbit/s',
      bars: r.pipe_sizes.map((p) => ({ label: `pair-native ${p.pipe_size / 1024}K`, value: p.gbps })),
    });
  }
  const columns = 2;
  const parts: string[] = [];
  const columnHeights = Array<number>(columns).fill(60);
  panels.forEach((p, i) => {
    const col = i % columns;
    const { svg, height } = panel(p.title, p.unit, p.bars, 20 + col * width, columnHeights[col]!, width);
    parts.push(svg);
    columnHeights[col]! += height + 20;
  });
  const totalHeight = Math.max(...columnHeights) + 10;
  const subtitle = `${r.started} · ${r.host.cpus} CPUs · Linux ${r.host.kernel} · Node ${r.host.node} · medians of ${String(r.settings.trials)} trials`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${columns * width + 40}" height="${totalHeight}" font-family="sans-serif" font-size="12">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="20" y="24" font-size="16" font-weight="bold">enclaver-proxy benchmark</text>` +
    `<text x="20" y="44" fill="#555">${escape(subtitle)}</text>` +
    `${parts.join('')}</svg>\n`
  );
}
