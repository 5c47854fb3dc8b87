/**
 * A path is a way for a client's TCP connection to reach the benchmark servers: directly, through
 * our pair, or through a baseline relay chain. Each running path exposes one entry port per server
 * (echo for latency/connection rate/idle tunnels, bulk for iperf3) and the pids of its proxies,
 * whose CPU and memory the benchmark measures.
 */
export interface Targets {
  echoPort: number;
  /** The iperf3 server, when iperf3 is installed. */
  bulkPort: number | undefined;
}

export interface PathContext {
  /** Scratch directory for configs and Unix sockets of this run. */
  workDir: string;
  /** fd limit given to proxy processes (the idle-tunnel test holds tens of thousands). */
  nofile: number;
}

export interface RunningPath {
  name: string;
  echoPort: number;
  bulkPort: number | undefined;
  /** Processes doing the relaying (empty for `direct`). */
  proxyPids(): number[];
  /** CPU seconds used so far by the relaying processes. */
  proxyCpuSeconds(): number;
  stop(): Promise<void>;
}

export interface PathDefinition {
  name: string;
  /** Why this path cannot run here (a missing binary), or null. */
  unavailable(): string | null;
  start(targets: Targets, ctx: PathContext): Promise<RunningPath>;
}
