/**
 * The targets, evaluated on one run's figures. Reported, never asserted: performance
 * depends on the machine, so tests never time anything; this is for the person reading the run.
 */
import type { IdleTunnelsResult } from '../workloads/idle-tunnels.js';
import type { PathResult, TargetCheck } from './types.js';

type Figure = 'gbps' | 'cpu_s_per_gb' | 'p50_us' | 'conns_per_s' | 'conn_p99_us' | 'cpu_us_per_conn';

function figure(results: PathResult[], path: string, key: Figure): number | null {
  return results.find((r) => r.name === path)?.[key] ?? null;
}

function ratioCheck(results: PathResult[], other: string, factor: number): TargetCheck {
  const ours = figure(results, 'pair-native', 'gbps');
  const theirs = figure(results, other, 'gbps');
  const target = `throughput pair-native ≥ ${factor}× ${other}`;
  if (ours === null || theirs === null || theirs === 0) return { target, wanted: `≥ ${factor}×`, measured: 'n/a', met: null };
  const ratio = ours / theirs;
  return { target, wanted: `≥ ${factor}×`, measured: `${ratio.toFixed(2)}×`, met: ratio >= factor };
}

export function checkTargets(results: PathResult[], memory: IdleTunnelsResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [
    ratioCheck(results, 'haproxy-2hop', 1.5),
    ratioCheck(results, 'socat-2hop', 2.5),
    ratioCheck(results, 'pair-js', 1.4),
  ];

  const cpuNative = figure(results, 'pair-native', 'cpu_s_per_gb');
  const cpuJs = figure(results, 'pair-js', 'cpu_s_per_gb');
  checks.push(
    cpuNative === null || cpuJs === null
      ? { target: 'proxy CPU per GB: pair-native ≤ ½ pair-js', wanted: '≤ 0.5×', measured: 'n/a', met: null }
      : {
          target: 'proxy CPU per GB: pair-native ≤ ½ pair-js',
          wanted: '≤ 0.5×',
          measured: `${(cpuNative / cpuJs).toFixed(2)}×`,
          met: cpuNative <= cpuJs / 2,
        },
  );

  const direct = figure(results, 'direct', 'p50_us');
  const native = figure(results, 'pair-native', 'p50_us');
  const haproxy = figure(results, 'haproxy-2hop', 'p50_us');
  checks.push(
    direct === null || native === null || haproxy === null
      ? { target: 'added p50 latency: pair-native ≤ haproxy-2hop', wanted: '≤', measured: 'n/a', met: null }
      : {
          target: 'added p50 latency: pair-native ≤ haproxy-2hop',
          wanted: `≤ ${(haproxy - direct).toFixed(1)} µs`,
          measured: `${(native - direct).toFixed(1)} µs`,
          met: native - direct <= haproxy - direct,
        },
  );

  const nativeDirect = figure(results, 'direct', 'gbps');
  const nativeGbps = figure(results, 'pair-native', 'gbps');
  checks.push(
    nativeDirect && nativeGbps
      ? {
          target: 'pair-native vs direct loopback (a bare splice relay chain reaches ~½)',
          wanted: '~0.5× (ceiling)',
          measured: `${(nativeGbps / nativeDirect).toFixed(2)}×`,
          met: null,
        }
      : { target: 'pair-native vs direct loopback', wanted: '~0.5×', measured: 'n/a', met: null },
  );

  // Connection setup (issue 13): as many new connections as the HAProxy chain, no slower on a fresh one.
  const connsNative = figure(results, 'pair-native', 'conns_per_s');
  const connsHaproxy = figure(results, 'haproxy-2hop', 'conns_per_s');
  checks.push(
    connsNative === null || connsHaproxy === null || connsHaproxy === 0
      ? { target: 'new connections/s: pair-native ≥ 1.0× haproxy-2hop', wanted: '≥ 1.0×', measured: 'n/a', met: null }
      : {
          target: 'new connections/s: pair-native ≥ 1.0× haproxy-2hop',
          wanted: '≥ 1.0×',
          measured: `${(connsNative / connsHaproxy).toFixed(2)}×`,
          met: connsNative >= connsHaproxy,
        },
  );
  const p99Native = figure(results, 'pair-native', 'conn_p99_us');
  const p99Haproxy = figure(results, 'haproxy-2hop', 'conn_p99_us');
  checks.push(
    p99Native === null || p99Haproxy === null
      ? { target: 'fresh-connection request p99: pair-native ≤ haproxy-2hop', wanted: '≤', measured: 'n/a', met: null }
      : {
          target: 'fresh-connection request p99: pair-native ≤ haproxy-2hop',
          wanted: `≤ ${p99Haproxy.toFixed(0)} µs`,
          measured: `${p99Native.toFixed(0)} µs`,
          met: p99Native <= p99Haproxy,
        },
  );

  const mem = memory.find((m) => m.path === 'pair-native');
  if (mem) {
    const worst = Math.max(...mem.processes.map((p) => p.kibPerTunnel));
    checks.push({
      target: 'RSS per idle tunnel, each pair-native process',
      wanted: '≤ 20 KiB',
      measured: `${worst.toFixed(1)} KiB (worst process)`,
      met: worst <= 20,
    });
  }
  for (const m of memory) {
    checks.push({
      target: `fds back to baseline after ${m.tunnels} tunnels (${m.path})`,
      wanted: 'yes',
      measured: m.fdsReturned ? 'yes' : 'no',
      met: m.fdsReturned,
    });
  }
  return checks;
}
