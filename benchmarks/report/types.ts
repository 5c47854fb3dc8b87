/** The benchmark's results, as written to `--json FILE`. */
import type { HttpSectionReport } from '../http-section.js';
import type { IdleTunnelsResult } from '../workloads/idle-tunnels.js';

export interface PathResult {
  name: string;
  /** Median over trials; null when that workload could not run on this path. */
  gbps: number | null;
  cpu_s_per_gb: number | null;
  p50_us: number | null;
  p99_us: number | null;
  conns_per_s: number | null;
  /** p99 of connect() → echoed byte on a fresh connection, during the connection-rate workload. */
  conn_p99_us: number | null;
  /** CPU (user + system) of the relaying processes per new connection. */
  cpu_us_per_conn: number | null;
  /** Every trial's figure, for whoever wants the spread. */
  trials: {
    gbps: number[];
    cpu_s_per_gb: number[];
    p50_us: number[];
    p99_us: number[];
    conns_per_s: number[];
    conn_p99_us: number[];
    cpu_us_per_conn: number[];
  };
}

export interface TargetCheck {
  target: string;
  wanted: string;
  measured: string;
  met: boolean | null;
}

export interface PipeSizeResult {
  pipe_size: number;
  gbps: number;
  cpu_s_per_gb: number;
}

export interface BenchmarkReport {
  started: string;
  host: { cpus: number; kernel: string; node: string };
  settings: Record<string, unknown>;
  results: PathResult[];
  memory: IdleTunnelsResult[];
  pipe_sizes: PipeSizeResult[];
  targets: TargetCheck[];
  skipped: { name: string; reason: string }[];
  /** The HTTP (L7) section, when the `http` workload ran. */
  http?: HttpSectionReport;
}
