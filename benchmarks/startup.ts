/**
 * Start-up benchmark: how long a user or a supervisor waits for `enclaver-proxy`, measured from
 * outside, from the spawn of `node dist/bin/enclaver-proxy.js …` on.
 *
 *   npm run bench:startup [-- --runs 15 --warmup 2]
 *
 * Cases (interleaved run by run, so a drift of the machine affects all alike):
 * - `--help`, `--version`, `--check` of the inner config: spawn → exit.
 * - `inner`, `outer`: the local demo's sides (configs/local-demo.yaml) on emulated vsock and free
 *   loopback ports: spawn → first log line, spawn → the `… proxy ready` line, and the CPU the
 *   process had used by then. The inner starts as it does in production, with an outer already
 *   running (one, started before the runs, on the inner's emulated vsock directory): its status,
 *   audit and metrics channels connect instead of failing and retrying. At the ready line every
 *   listener and the admin endpoint must accept a connection: the benchmark checks it and fails
 *   otherwise, so the figure is the time to listeners accepting, not to a log line.
 * - `inner, ingress only`: the same inner without its egress listener, so without the audit
 *   stream's attestation (the NSM simulator off Nitro).
 *
 * Figures are medians (min–max beside them) over `--runs`. CPU ms (user + system, from /proc) is
 * the steadier figure when other work shares the machine; the load average is printed with them.
 * The ready line's own `startup_ms` (counted inside the process from its start) is shown too.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions } from './lib/options.js';
import { freePort } from './lib/net.js';
import { cpuSeconds, reapedChildrenCpuSeconds } from './lib/proc-stats.js';
import { start, stop, type Tracked } from './lib/processes.js';
import { median } from './lib/stats.js';

const { runs: RUNS, warmup: WARMUP } = benchOptions(
  'npm run bench:startup',
  'Start-up time of the CLI, the inner and the outer: spawn → exit, first log line, ready (listeners accepting).',
  {
    runs: { default: 15, help: 'runs per case (medians are reported)' },
    warmup: { default: 2, help: 'runs per case before measuring (file cache, JIT-less first loads)' },
  },
);

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/enclaver-proxy.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-startup-'));
const vsockDir = (side: string) => {
  const d = path.join(dir, `vsock-${side}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

/** Where a side's listeners and admin endpoint can be reached from here. */
type Probe = { kind: 'tcp'; port: number } | { kind: 'unix'; path: string };

interface SideCase {
  name: string;
  config: string;
  readyMessage: string;
  probes: Probe[];
}

/**
 * The local demo's inner side (configs/local-demo.yaml) without its app; `ingressOnly` drops its
 * egress listener, and with it the audit stream's NSM attestation (off Nitro: the simulator and
 * its throw-away CA), which is what an inner that uses no NSM, or the real one, skips.
 */
async function innerCase(name: string, emulationDir: string, ingressOnly: boolean): Promise<SideCase> {
  const [admin, egress] = [await freePort(), await freePort()];
  const config = path.join(dir, `${name}.yaml`);
  const egressListener = `
  - name: egress
    address: tcp://127.0.0.1:${egress}
    egress:
      allow: [example.com:443, "**.amazonaws.com:443"]
      deny: [169.254.0.0/16]`;
  fs.writeFileSync(
    config,
    `role: inner
admin: { address: tcp://127.0.0.1:${admin} }
vsock: { emulation_dir: ${emulationDir} }
listeners:
  - name: web
    address: vsock://any:8080
    proxy_protocol: v2
    access_log: true
    cluster: app${ingressOnly ? '' : egressListener}
clusters:
  - { name: app, endpoints: [tcp://127.0.0.1:8080] }
`,
  );
  const probes: Probe[] = [
    { kind: 'tcp', port: admin },
    { kind: 'unix', path: path.join(emulationDir, '16_8080.sock') },
    ...(ingressOnly ? [] : [{ kind: 'tcp' as const, port: egress }]),
  ];
  return { name, config, readyMessage: 'inner proxy ready', probes };
}

async function outerCase(name: string, emulationDir: string): Promise<SideCase> {
  const [admin, web] = [await freePort(), await freePort()];
  const config = path.join(dir, `${name}.yaml`);
  // The local demo's outer side, with the egress relay and audit collector it runs there.
  fs.writeFileSync(
    config,
    `role: outer
admin: { address: tcp://127.0.0.1:${admin} }
vsock: { emulation_dir: ${emulationDir} }
egress_relay: {}
audit: { stdout: true }
listeners:
  - { name: web, address: tcp://127.0.0.1:${web}, cluster: enclave_web }
clusters:
  - { name: enclave_web, endpoints: [vsock://16:8080], proxy_protocol: v2 }
`,
  );
  const probes: Probe[] = [
    { kind: 'tcp', port: admin },
    { kind: 'tcp', port: web },
    { kind: 'unix', path: path.join(emulationDir, '3_17002.sock') },
  ];
  return { name: 'outer', config, readyMessage: 'outer proxy ready', probes };
}

function accepts(probe: Probe): Promise<boolean> {
  return new Promise((resolve) => {
    const s = probe.kind === 'tcp' ? net.connect({ host: '127.0.0.1', port: probe.port }) : net.connect({ path: probe.path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const ENV = { ...process.env, ENCLAVER_LOG_FORMAT: 'json', ENCLAVER_LOG_LEVEL: 'info' };

/** An exited child's CPU is the growth of this process's reaped-children CPU while it ran (one child at a time). */
const reapedChildrenCpu = () => reapedChildrenCpuSeconds(process.pid);

interface Sample {
  ms: number;
  cpuMs: number;
  firstLineMs?: number;
  insideMs?: number;
}

async function runToExit(args: string[]): Promise<Sample> {
  const cpuBefore = reapedChildrenCpu();
  const t0 = performance.now();
  const t = start('enclaver-proxy', process.execPath, [CLI, ...args], { env: ENV });
  const code = await t.exited;
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`enclaver-proxy ${args.join(' ')} exited with ${code}: ${t.output().slice(-2000)}`);
  return { ms, cpuMs: (reapedChildrenCpu() - cpuBefore) * 1000 };
}

/** Starts a side and resolves at its ready line: the time from spawn, its CPU then, its own startup_ms. */
async function startToReady(c: SideCase): Promise<{ tracked: Tracked; sample: Sample }> {
  let firstLineMs: number | undefined;
  let onReady: (r: { ms: number; cpuMs: number; insideMs: number }) => void = () => {};
  const ready = new Promise<{ ms: number; cpuMs: number; insideMs: number }>((resolve) => (onReady = resolve));
  const t0 = performance.now();
  const tracked: Tracked = start(c.name, process.execPath, [CLI, '--config', c.config], {
    env: ENV,
    onLine: (line) => {
      const ms = performance.now() - t0;
      firstLineMs ??= ms;
      if (!line.includes(c.readyMessage)) return;
      const record = JSON.parse(line) as { msg?: string; startup_ms?: number };
      if (record.msg !== c.readyMessage) return;
      onReady({ ms, cpuMs: cpuSeconds(tracked.pid) * 1000, insideMs: record.startup_ms ?? NaN });
    },
  });
  const exited = tracked.exited.then((code) => {
    throw new Error(`${c.name} exited with ${code} before its ready line: ${tracked.output().slice(-2000)}`);
  });
  const r = await Promise.race([ready, exited]);
  const refused = [];
  for (const p of c.probes) if (!(await accepts(p))) refused.push(p);
  if (refused.length > 0) {
    await stop(tracked);
    throw new Error(`${c.name}: ready line printed while ${JSON.stringify(refused)} did not accept`);
  }
  return { tracked, sample: { ms: r.ms, cpuMs: r.cpuMs, firstLineMs, insideMs: r.insideMs } };
}

async function runToReady(c: SideCase): Promise<Sample> {
  const { tracked, sample } = await startToReady(c);
  // A graceful stop removes the side's emulated vsock sockets, so the next run can bind them.
  await stop(tracked);
  return sample;
}

interface Case {
  name: string;
  run: () => Promise<Sample>;
}

function fmt(values: number[]): string {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) return '-';
  const min = Math.min(...values);
  const max = Math.max(...values);
  return `${Math.round(median(values))} (${Math.round(min)}–${Math.round(max)})`;
}

async function main(): Promise<void> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  const innerVsock = vsockDir('inner');
  const inner = await innerCase('inner', innerVsock, false);
  const ingressOnly = await innerCase('inner-ingress-only', innerVsock, true);
  const outer = await outerCase('outer', vsockDir('outer'));
  // The inner's parent: running through every inner run, as on a Nitro host.
  const parent = (await startToReady(await outerCase('parent', innerVsock))).tracked;
  const cases: Case[] = [
    { name: '--help', run: () => runToExit(['--help']) },
    { name: '--version', run: () => runToExit(['--version']) },
    { name: 'inner --check', run: () => runToExit(['--config', inner.config, '--check']) },
    { name: 'inner', run: () => runToReady(inner) },
    { name: 'inner, ingress only', run: () => runToReady(ingressOnly) },
    { name: 'outer', run: () => runToReady(outer) },
  ];
  const load = os.loadavg();
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const c of cases) {
      const s = await c.run();
      if (i >= WARMUP) samples.get(c.name)?.push(s);
    }
  }
  await stop(parent);
  const loadAfter = os.loadavg();
  const rows = cases.map((c) => {
    const s = samples.get(c.name) ?? [];
    const pick = (f: (x: Sample) => number | undefined) => s.map(f).filter((v): v is number => v !== undefined);
    return [c.name, fmt(pick((x) => x.ms)), fmt(pick((x) => x.cpuMs)), fmt(pick((x) => x.firstLineMs)), fmt(pick((x) => x.insideMs))];
  });
  const header = ['case', 'wall ms to exit/ready', 'CPU ms', 'first line ms', 'startup_ms (inside)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(
    [
      `node ${process.version}, ${os.cpus().length} CPUs, ${RUNS} runs per case (after ${WARMUP} warm-up), medians (min–max)`,
      `load average before ${load.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
      line(header),
      ...rows.map(line),
      '',
    ].join('\n'),
  );
}

try {
  await main();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
