/**
 * The outer proxy on the parent instance: ingress listeners into the enclave and the collectors
 * of what the enclave reports. Returns the exit code the process should end with.
 */
import type { SideConfig } from '../shared/config/types.js';
import { messageOf } from '../shared/errors/index.js';
import { logger } from '../shared/log/logger.js';
import { SideRuntime } from '../shared/runtime/side-runtime.js';
import { onShutdownSignal, SIGNAL_NUMBERS } from '../shared/runtime/signals.js';
import { exitCodeOf, type EnclaveStatus } from '../shared/wire/status.js';
import { parseAddress } from '../shared/transport/index.js';
import { AuditCollector } from './audit/collector.js';
import { loadHostsFile } from './egress-relay/hosts-file.js';
import { EgressRelay } from './egress-relay/relay.js';
import { parseUpstreamProxy } from './egress-relay/upstream-proxy.js';
import { outerListenerKinds } from './listeners.js';
import { StatusCollector } from './status/collector.js';
import { EnclaveSupervisor } from './enclave/supervisor.js';
import { startClockServer } from './clock/server.js';
import { enclaveMetricsRoute } from './enclave-metrics/fetch.js';
import { LogCollector } from './logs/collector.js';
import { Imdsv2Client } from './imds-relay/imdsv2-client.js';
import { startImdsRelay } from './imds-relay/relay-server.js';
import { VSOCK_CID_ANY } from '../shared/transport/address.js';
import type { Listening } from '../shared/transport/index.js';
import { PairPort } from '../shared/wire/ports.js';

const log = logger('outer');

export interface OuterHandle {
  runtime: SideRuntime;
  status: StatusCollector;
  egressRelay: EgressRelay | undefined;
  audit: AuditCollector | undefined;
  shutdown(): Promise<void>;
}

/** The egress relay when configured, and the audit collector whenever there is egress or `audit`. */
function egressParts(config: SideConfig): { egressRelay: EgressRelay | undefined; audit: AuditCollector | undefined } {
  const r = config.egressRelay;
  const egressRelay = r && new EgressRelay({
    address: parseAddress(`vsock://any:${PairPort.Egress}`),
    connectTimeoutMs: r.connectTimeoutMs,
    idleTimeoutMs: r.idleTimeoutMs,
    hosts: r.hostsFile ? loadHostsFile(r.hostsFile) : undefined,
    guard: { allowPrivate: r.allowPrivate },
    upstreamProxy: r.upstreamProxy && { ...parseUpstreamProxy(r.upstreamProxy.url, { file: config.source, path: 'egress_relay.upstream_proxy.url' }), hosts: r.upstreamProxy.hosts },
  });
  const a = config.audit;
  const audit = egressRelay || a
    ? new AuditCollector({ address: parseAddress(`vsock://any:${PairPort.Audit}`), stdout: a?.stdout ?? true, file: a?.file })
    : undefined;
  return { egressRelay, audit };
}

/** Start the outer's parts; the caller decides when to stop (signal, enclave exit, local child). */
export async function startOuter(config: SideConfig): Promise<OuterHandle> {
  const runtime = new SideRuntime(config, outerListenerKinds(config));
  const status = new StatusCollector();
  status.on('status', (s: EnclaveStatus) => log.info({ enclave_status: s }, `enclave ${s.state}`));
  runtime.admin.addReadinessCheck('enclave', () => ({
    ready: status.latest?.state === 'running',
    detail: status.latest ? status.latest.state : 'no status from the enclave yet',
  }));
  await status.start();
  const clock = await startClockServer();
  const logs = new LogCollector();
  await logs.start();
  runtime.admin.addRoute('/enclave/metrics', enclaveMetricsRoute(config.enclave.cid));
  const { egressRelay, audit } = egressParts(config);
  // The audit collector first: the inner may send records as soon as a tunnel is refused.
  await audit?.start();
  await egressRelay?.start();
  let imdsRelay: Listening | undefined;
  if (config.imdsRelay) {
    const client = new Imdsv2Client({ endpoint: config.imdsRelay.upstream, tokenTtlSeconds: config.imdsRelay.tokenTtlSeconds, timeoutMs: config.imdsRelay.timeoutMs });
    imdsRelay = await startImdsRelay({ address: { kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Imds }, client });
    log.info({ upstream: config.imdsRelay.upstream, port: PairPort.Imds }, 'IMDS relay listening');
  }
  await runtime.start();
  return {
    runtime,
    status,
    egressRelay,
    audit,
    async shutdown() {
      await runtime.shutdown();
      await egressRelay?.stop();
      await audit?.stop();
      await imdsRelay?.close();
      await status.close();
      await clock.close();
      await logs.close();
    },
  };
}

export async function runOuter(config: SideConfig): Promise<number> {
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
  const stopped = new Promise<void>((resolve) => { unhook = onShutdownSignal((signal) => { stopSignal = signal; resolve(); }); });
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
  const code = stopSignal ? 0 : await new Promise<number>((resolve) => {
    void stopped.then(() => resolve(0));
    if (config.enclave.exitWithApp) {
      outer.status.on('status', (s) => {
        const c = exitCodeOf(s, SIGNAL_NUMBERS);
        if (c !== undefined) resolve(c);
      });
    }
    // The enclave's status connection closes with it; what it said before that is the verdict.
    void supervisor?.gone.then(() => outer.status.idle()).then(() => {
      const c = outer.status.latest && exitCodeOf(outer.status.latest, SIGNAL_NUMBERS);
      if (c === undefined) log.error({ enclave_id: supervisor.enclaveId }, 'the enclave ended without reporting its app\'s exit');
      resolve(c ?? 1);
    });
  });
  unhook();
  await supervisor?.terminate();
  await outer.shutdown();
  log.info({ exit_code: code }, 'outer proxy stopped');
  return code;
}
