/**
 * The outer proxy on the parent instance: ingress listeners into the enclave and the collectors
 * of what the enclave reports. Returns the exit code the process should end with.
 */
import type { OuterConfig } from '../shared/config/types.js';
import { messageOf } from '../shared/errors/index.js';
import { logger } from '../shared/log/logger.js';
import { Closers } from '../shared/runtime/closers.js';
import { logReady, SideRuntime } from '../shared/runtime/side-runtime.js';
import { onShutdownSignal, SIGNAL_NUMBERS } from '../shared/runtime/signals.js';
import { exitCodeOf, type EnclaveStatus } from '../shared/wire/status.js';
import { parseAddress } from '../shared/transport/index.js';
import { AuditCollector } from './audit/collector.js';
import { SyslogSink } from './audit/syslog-sink.js';
import { loadHostsFile } from './egress-relay/hosts-file.js';
import { EgressRelay } from './egress-relay/relay.js';
import { outerListeners } from './listeners.js';
import { registerOuterMetrics, setEnclaveState } from './metrics.js';
import { StatusCollector } from './status/collector.js';
import { enclaveMetricsRoute } from './enclave-metrics/fetch.js';
import { LogCollector } from './logs/collector.js';
import { VSOCK_CID_ANY } from '../shared/transport/address.js';
import { PairPort } from '../shared/wire/ports.js';
import { EnclaveSupervisor } from './enclave/supervisor.js';
import { startClockServer } from './clock/server.js';

const log = logger('outer');

export interface OuterHandle {
  runtime: SideRuntime<OuterConfig>;
  status: StatusCollector;
  egressRelay: EgressRelay | undefined;
  audit: AuditCollector | undefined;
  shutdown(): Promise<void>;
}

/** The egress relay when configured, and the audit collector whenever there is egress or `audit`. */
function egressParts(config: OuterConfig): { egressRelay: EgressRelay | undefined; audit: AuditCollector | undefined } {
  const r = config.egressRelay;
  const egressRelay =
    r &&
    new EgressRelay({
      address: parseAddress(`vsock://any:${PairPort.Egress}`),
      connectTimeoutMs: r.connectTimeoutMs,
      idleTimeoutMs: r.idleTimeoutMs,
      hosts: r.hostsFile ? loadHostsFile(r.hostsFile) : undefined,
      guard: { allowPrivate: r.allowPrivate },
      upstreamProxy: r.upstreamProxy,
    });
  const a = config.audit;
  const audit =
    egressRelay || a
      ? new AuditCollector({
          address: parseAddress(`vsock://any:${PairPort.Audit}`),
          enclaveCid: config.enclave.cid,
          stdout: a?.stdout ?? true,
          file: a?.file,
          sinks: a?.syslog ? [new SyslogSink(a.syslog)] : [],
        })
      : undefined;
  return { egressRelay, audit };
}

/**
 * Start the outer's parts; the caller decides when to stop (signal, enclave exit, local child).
 * A start that fails part way closes what it opened before the error is passed on.
 */
export async function startOuter(config: OuterConfig): Promise<OuterHandle> {
  const closers = new Closers(log);
  try {
    const runtime = new SideRuntime(config, outerListeners(config));
    const status = new StatusCollector({ enclaveCid: config.enclave.cid });
    registerOuterMetrics();
    status.on('status', (s: EnclaveStatus) => {
      setEnclaveState(s);
      log.info({ enclave_status: s }, `enclave ${s.state}`);
    });
    runtime.admin.addReadinessCheck('enclave', () => {
      const s = status.latest;
      if (!s) return { ready: false, detail: 'no status from the enclave yet' };
      if (s.state !== 'running') return { ready: false, detail: s.state };
      return { ready: s.accepting, detail: s.accepting ? 'running, app accepting' : 'running, app not yet accepting' };
    });
    closers.add('status channel', () => status.close());
    await status.start();
    const logs = new LogCollector({ enclaveCid: config.enclave.cid });
    closers.add('log channel', () => logs.close());
    await logs.start();
    const clock = await startClockServer();
    closers.add('clock channel', () => clock.close());
    runtime.admin.addRoute('/enclave/metrics', enclaveMetricsRoute(config.enclave.cid));
    const { egressRelay, audit } = egressParts(config);
    // The audit collector first: the inner may send records as soon as a tunnel is refused.
    if (audit) {
      closers.add('audit collector', () => audit.stop());
      await audit.start();
    }
    if (egressRelay) {
      closers.add('egress relay', () => egressRelay.stop());
      await egressRelay.start();
    }
    const imds = config.imdsRelay;
    if (imds) {
      // Loaded only with an IMDS relay: its HTTP client (undici) was most of the outer's start-up.
      const [{ Imdsv2Client }, { startImdsRelay }] = await Promise.all([
        import('./imds-relay/imdsv2-client.js'),
        import('./imds-relay/relay-server.js'),
      ]);
      const client = new Imdsv2Client({ endpoint: imds.upstream, tokenTtlSeconds: imds.tokenTtlSeconds, timeoutMs: imds.timeoutMs });
      const imdsRelay = await startImdsRelay({ address: { kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Imds }, client });
      closers.add('IMDS relay', () => imdsRelay.close());
      log.info({ upstream: imds.upstream, port: PairPort.Imds }, 'IMDS relay listening');
    }
    closers.add('listeners', () => runtime.shutdown());
    await runtime.start();
    logReady(log, 'outer proxy ready', runtime);
    return { runtime, status, egressRelay, audit, shutdown: () => closers.closeAll() };
  } catch (err) {
    await closers.closeAll();
    throw err;
  }
}

export async function runOuter(config: OuterConfig): Promise<number> {
  let outer: OuterHandle;
  try {
    outer = await startOuter(config);
  } catch (err) {
    log.fatal({ err: messageOf(err) }, 'outer proxy could not start');
    return 1;
  }
  // One shutdown signal for every phase: launching, waiting for the inner, running.
  let stopSignal: NodeJS.Signals | undefined;
  let unhook: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    unhook = onShutdownSignal((signal) => {
      stopSignal = signal;
      resolve();
    });
  });
  // The collectors listen before the enclave boots, so its first status and log lines are not lost.
  const launch = config.enclave.launch;
  const supervisor = launch ? new EnclaveSupervisor({ ...launch, cid: config.enclave.cid }) : undefined;
  if (supervisor) {
    try {
      // A signal during run-enclave takes effect once nitro-cli answers: the enclave is then terminated.
      await supervisor.start();
      await Promise.race([supervisor.waitForInner(outer.status), stopped]);
    } catch (err) {
      log.fatal({ err: messageOf(err) }, 'the enclave could not be started');
      unhook();
      await supervisor.terminate();
      await outer.shutdown();
      return 1;
    }
  }
  const code = stopSignal
    ? 0
    : await new Promise<number>((resolve) => {
        void stopped.then(() => resolve(0));
        if (config.enclave.exitWithApp) {
          outer.status.on('status', (s) => {
            const c = exitCodeOf(s, SIGNAL_NUMBERS);
            if (c !== undefined) resolve(c);
          });
        }
        // The enclave's status stream closes with it; what it said before that is the verdict.
        void supervisor?.gone
          .then(() => outer.status.idle())
          .then(() => {
            const c = outer.status.latest && exitCodeOf(outer.status.latest, SIGNAL_NUMBERS);
            if (c === undefined) log.error({ enclave_id: supervisor.enclaveId }, "the enclave ended without reporting its app's exit");
            resolve(c ?? 1);
          });
      });
  unhook();
  await supervisor?.terminate();
  await outer.shutdown();
  log.info({ exit_code: code }, 'outer proxy stopped');
  return code;
}
