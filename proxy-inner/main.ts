/**
 * The inner proxy: listeners inside the enclave, the supervised app, and the status channel to
 * the outer. Returns the exit code the process should end with (the app's, as a shell reports it).
 */
import type { InnerConfig } from '../shared/config/types.js';
import { whenAccepting } from '../shared/cluster/accepting.js';
import { messageOf } from '../shared/errors/index.js';
import { addLogTap, logger, logsAreJson } from '../shared/log/logger.js';
import { Closers } from '../shared/runtime/closers.js';
import { configureSideVsock, logReady, SideRuntime } from '../shared/runtime/side-runtime.js';
import { parentChannel, vsockSettings } from '../shared/transport/vsock.js';
import { LogForwarder } from './logs/forwarder.js';
import { MetricsExporter } from './metrics-export/exporter.js';
import { onShutdownSignal, SIGNAL_NUMBERS } from '../shared/runtime/signals.js';
import { exitCodeOf } from '../shared/wire/status.js';
import { appEnvironment } from './app/environment.js';
import { AppStartError, AppSupervisor, preflightApp, type AppExit } from './app/supervisor.js';
import { innerAws, innerListeners, needsAws } from './listeners.js';
import { formatAddress, type Address } from '../shared/transport/index.js';
import { runBootstrap, type Bootstrapped } from './bootstrap/bootstrap.js';
import { BootstrapError } from './bootstrap/errors.js';
import type { InitDuties } from './bootstrap/init-duties.js';
import { PairPort } from '../shared/wire/ports.js';
import type { AuditSender } from './audit/sender.js';
import type { Nsm } from './nsm/nsm.js';
import { appProxyUrls } from './egress/app-proxy-url.js';
import { auditStreamMetrics, countEgress } from './egress/metrics.js';
import type { InnerAws } from './aws-services.js';
import { awsAppEnvironment } from './app/aws-environment.js';
import { StatusReporter } from './status/reporter.js';
import { TlsIdentities } from './tls/tls-identities.js';

const log = logger('inner');
/** How long shutdown waits for the outer to acknowledge the last audit records. */
const AUDIT_FLUSH_MS = 2000;

export interface InnerOptions {
  /** Shut down when stdin closes (the local pair's outer holds the other end). */
  lifeline?: NodeJS.ReadableStream;
}

export async function runInner(config: InnerConfig, opts: InnerOptions = {}): Promise<number> {
  configureSideVsock(config);
  // The log channel starts first, so the lines that explain a failed start reach the outer too.
  const logs = startLogForwarding(config);
  const reporter = new StatusReporter();
  reporter.start();
  // Before any listener: an enclave boots with lo down, and 127.0.0.1 is where the app and we meet.
  let bootstrapped: Bootstrapped | undefined;
  try {
    bootstrapped = runBootstrap(config);
  } catch (err) {
    log.fatal({ err: messageOf(err), step: err instanceof BootstrapError ? err.step : undefined }, 'enclave bootstrap failed');
    reporter.report({ state: 'fatal', error: messageOf(err), code: 1 });
    await reporter.stop();
    await logs?.stop();
    return 1;
  }
  const exitCode = await superviseInner(config, opts, reporter, logs, bootstrapped?.duties);
  await bootstrapped?.stop();
  await logs?.stop();
  return exitCode;
}

/** Forward log lines to the outer unless the config says otherwise; by default only on real vsock. */
function startLogForwarding(config: InnerConfig): LogForwarder | undefined {
  if (!(config.logs.forward ?? vsockSettings().emulationDir === undefined)) return undefined;
  const logs = new LogForwarder({ maxBufferedBytes: config.logs.bufferBytes });
  addLogTap((line) => logs.write(line.trimEnd()));
  logs.start();
  return logs;
}

async function superviseInner(
  config: InnerConfig,
  opts: InnerOptions,
  reporter: StatusReporter,
  logs: LogForwarder | undefined,
  duties: InitDuties | undefined,
): Promise<number> {
  // Everything opened below is closed by this one stack, newest first: on a normal stop and on a
  // start that failed part way alike.
  const closers = new Closers(log);
  closers.add('status reporter', () => reporter.stop());
  const fatal = async (err: unknown, what: string): Promise<number> => {
    const code = err instanceof AppStartError ? err.exitCode : 1;
    log.fatal({ err: messageOf(err) }, what);
    reporter.report({ state: 'fatal', error: messageOf(err), code });
    await closers.closeAll();
    return code;
  };
  try {
    // A missing binary is reported before any socket opens, like a config error.
    if (config.app) preflightApp(config.app, process.env.PATH);
  } catch (err) {
    return fatal(err, 'app could not be started');
  }
  const metricsExport = new MetricsExporter();
  closers.add('metrics export', () => metricsExport.close());
  // Metrics for the parent are an aid, not a duty: an enclave that cannot offer them still runs.
  await metricsExport.start().catch((err: unknown) => log.warn({ err: messageOf(err) }, 'metrics export to the outer unavailable'));
  let aws: InnerAws | undefined;
  let awsLoading: Promise<InnerAws> | undefined;
  closers.add('AWS services', () => aws?.close());
  // Loaded on first use: an inner without AWS listeners never loads the KMS and SigV4 code.
  const awsServices = () => (awsLoading ??= innerAws(config).then((a) => (aws = a)));
  // One NSM per process (one simulator root to pin): the AWS services' when there are any.
  const nsm = needsAws(config)
    ? async () => (await awsServices()).nsm
    : async () => {
        const own = (await import('./nsm/index.js')).openNsm(config.nsm).nsm;
        closers.add('NSM', () => own.close());
        return own;
      };
  let runtime: SideRuntime<InnerConfig>;
  try {
    const audit = await auditSender(config, nsm);
    if (audit) closers.add('audit stream', () => flushAudit(audit));
    const tls = new TlsIdentities(needsAws(config) ? await awsServices() : null);
    runtime = new SideRuntime(
      config,
      await innerListeners(config, {
        aws: awsServices,
        tls,
        audit: (r) => {
          countEgress(r);
          audit?.emit(r);
        },
      }),
    );
    closers.add('listeners', () => runtime.shutdown());
    if (audit) {
      auditStreamMetrics(() => audit.stats());
      audit.start();
    }
    await runtime.start();
    // Sealed TLS keys need the listeners (egress) up; a key KMS will not open is fatal now.
    const sealed = await tls.ready();
    if (sealed > 0) log.info({ keys: sealed }, 'TLS keys decrypted inside the enclave (attested KMS)');
    logReady(log, 'inner proxy ready', runtime);
  } catch (err) {
    return fatal(err, 'inner proxy could not start');
  }

  let stopRequested: NodeJS.Signals | undefined;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  closers.add(
    'signal handlers',
    onShutdownSignal((signal) => {
      stopRequested = signal;
      wake();
    }),
  );
  opts.lifeline?.on('end', () => {
    if (!stopRequested) {
      log.warn('the outer went away; shutting down');
      stopRequested = 'SIGTERM';
      wake();
    }
  });
  opts.lifeline?.resume();

  let exitCode = 0;
  if (config.app) {
    const urls = appProxyUrls(config, (name) => runtime.listeners.find((l) => l.name === name)?.address);
    const app = new AppSupervisor(
      config.app,
      appEnvironment(process.env, {
        configured: config.app.env,
        egressProxyUrl: urls.http,
        allProxyUrl: urls.all,
        aws: awsAppEnvironment(config, runtime.listeners, await aws?.regionForApp()),
      }),
      logs || logsAreJson() ? 'lines' : 'inherit',
    );
    let pid: number;
    try {
      pid = app.start();
    } catch (err) {
      return fatal(err, 'app could not be started');
    }
    const started = Date.now();
    // Node waits for the app itself; the orphan reaper must never take its exit status.
    duties?.protect(pid);
    duties?.forwardTo(pid);
    // Ready once the app accepts on every port ingress forwards to (until then the listeners
    // hold early clients rather than reset them; shared/cluster/connect.ts).
    const ports = ingressAppEndpoints(config);
    let accepting = ports.length === 0;
    const probe = new AbortController();
    reporter.report({ state: 'running', pid, accepting });
    runtime.admin.addReadinessCheck('app', () => ({
      ready: accepting,
      detail: accepting ? `pid ${pid}, accepting` : `pid ${pid}, not yet accepting on ${ports.map(formatAddress).join(', ')}`,
    }));
    if (!accepting) {
      whenAccepting(ports, probe.signal).then(
        () => {
          accepting = true;
          log.info({ endpoints: ports.map(formatAddress) }, 'app accepting connections');
          reporter.report({ state: 'running', pid, accepting });
        },
        () => {},
      );
    }
    void app.exited.finally(() => probe.abort());
    const first = await Promise.race([
      app.exited.then((e) => ({ kind: 'exit' as const, e })),
      stopped.then(() => ({ kind: 'stop' as const })),
    ]);
    let exit: AppExit;
    if (first.kind === 'stop') {
      // Connections in flight finish against a live app; only then is the app asked to stop.
      await runtime.stopAccepting();
      await runtime.drain();
      exit = await app.stop(stopRequested ?? 'SIGTERM');
    } else {
      exit = first.e;
      const ranMs = Date.now() - started;
      log[exit.code === 0 ? 'info' : 'error'](
        { code: exit.code, signal: exit.signal, ran_ms: ranMs },
        ranMs < 1000 ? 'app exited right after starting' : 'app exited',
      );
    }
    const status = { state: 'exited' as const, code: exit.code, signal: exit.signal };
    reporter.report(status);
    exitCode = exitCodeOf(status, SIGNAL_NUMBERS) ?? 1;
  } else {
    await stopped;
  }
  await closers.closeAll();
  log.info({ exit_code: exitCode }, 'inner proxy stopped');
  return exitCode;
}

/**
 * One audit stream per process, shared by every egress listener; only when one exists. Its key is
 * attested by the same NSM as the rest (one simulator per process: one root to pin).
 */
async function auditSender(config: InnerConfig, nsm: () => Promise<Nsm>): Promise<AuditSender | undefined> {
  if (!config.listeners.some((l) => l.kind === 'egress')) return undefined;
  const [{ AuditSender }, { AuditEvidence }] = await Promise.all([import('./audit/sender.js'), import('./audit/evidence.js')]);
  return new AuditSender({
    address: parentChannel(PairPort.Audit),
    maxBuffered: config.audit.bufferRecords,
    evidence: new AuditEvidence(await nsm()),
    checkpoint: config.audit.checkpoint,
  });
}

/**
 * Close the boot's stream (a closing checkpoint) and give the outer a moment to acknowledge the
 * last records (the drain's own attempts included).
 */
async function flushAudit(audit: AuditSender): Promise<void> {
  audit.close();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = await Promise.race([
    audit.drained().then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), AUDIT_FLUSH_MS);
    }),
  ]);
  clearTimeout(timer);
  if (gaveUp) log.warn({ unacknowledged: audit.stats().buffered }, 'audit records not acknowledged by the outer at shutdown');
  audit.stop();
}

/** Where ingress listeners forward to inside the enclave: the first endpoint of each of their clusters. */
function ingressAppEndpoints(config: InnerConfig): Address[] {
  const out: Address[] = [];
  for (const l of config.listeners) {
    const first = l.kind === 'tcp_proxy' ? l.cluster.endpoints[0] : undefined;
    if (first && first.kind !== 'vsock' && !out.some((a) => formatAddress(a) === formatAddress(first))) out.push(first);
  }
  return out;
}
