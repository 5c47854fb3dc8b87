/**
 * The inner proxy: listeners inside the enclave, the supervised app, and the status channel to
 * the outer. Returns the exit code the process should end with (the app's, as a shell reports it).
 */
import type { SideConfig } from '../shared/config/types.js';
import { messageOf } from '../shared/errors/index.js';
import { logger } from '../shared/log/logger.js';
import { SideRuntime } from '../shared/runtime/side-runtime.js';
import { onShutdownSignal, SIGNAL_NUMBERS } from '../shared/runtime/signals.js';
import { exitCodeOf } from '../shared/wire/status.js';
import { appEnvironment } from './app/environment.js';
import { AppStartError, AppSupervisor, preflightApp, type AppExit } from './app/supervisor.js';
import { innerAws, innerListenerKinds } from './listeners.js';
import type { InnerAws } from './aws-services.js';
import { awsAppEnvironment } from './app/aws-environment.js';
import { StatusReporter } from './status/reporter.js';

const log = logger('inner');

export interface InnerOptions {
  /** Shut down when stdin closes (the local pair's outer holds the other end). */
  lifeline?: NodeJS.ReadableStream;
}

export async function runInner(config: SideConfig, opts: InnerOptions = {}): Promise<number> {
  const reporter = new StatusReporter();
  reporter.start();
  try {
    // A missing binary is reported before any socket opens, like a config error.
    if (config.app) preflightApp(config.app, process.env.PATH);
  } catch (err) {
    const code = err instanceof AppStartError ? err.exitCode : 1;
    log.fatal({ err: messageOf(err) }, 'app could not be started');
    reporter.report({ state: 'fatal', error: messageOf(err), code });
    await reporter.stop();
    return code;
  }
  let runtime: SideRuntime;
  let aws: InnerAws | null = null;
  try {
    aws = innerAws(config);
    runtime = new SideRuntime(config, innerListenerKinds(config, aws));
    await runtime.start();
  } catch (err) {
    await aws?.close();
    log.fatal({ err: messageOf(err) }, 'inner proxy could not start');
    reporter.report({ state: 'fatal', error: messageOf(err), code: 1 });
    await reporter.stop();
    return 1;
  }

  let stopRequested: NodeJS.Signals | undefined;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => { wake = resolve; });
  const unhook = onShutdownSignal((signal) => { stopRequested = signal; wake(); });
  opts.lifeline?.on('end', () => { if (!stopRequested) { log.warn('the outer went away; shutting down'); stopRequested = 'SIGTERM'; wake(); } });
  opts.lifeline?.resume();

  let exitCode = 0;
  if (config.app) {
    const app = new AppSupervisor(config.app, appEnvironment(process.env, { configured: config.app.env, aws: awsAppEnvironment(config, runtime.listeners, await aws?.regionForApp()) }));
    let pid: number;
    try {
      pid = app.start();
    } catch (err) {
      const code = err instanceof AppStartError ? err.exitCode : 1;
      log.fatal({ err: messageOf(err) }, 'app could not be started');
      reporter.report({ state: 'fatal', error: messageOf(err), code });
      await runtime.shutdown();
      await aws?.close();
      await reporter.stop();
      unhook();
      return code;
    }
    const started = Date.now();
    reporter.report({ state: 'running', pid });
    runtime.admin.addReadinessCheck('app', () => ({ ready: true, detail: `pid ${pid}` }));
    const first = await Promise.race([app.exited.then((e) => ({ kind: 'exit' as const, e })), stopped.then(() => ({ kind: 'stop' as const }))]);
    let exit: AppExit;
    if (first.kind === 'stop') {
      // Connections in flight finish against a live app; only then is the app asked to stop.
      await runtime.stopAccepting();
      await runtime.drain();
      exit = await app.stop(stopRequested ?? 'SIGTERM');
    } else {
      exit = first.e;
      const ranMs = Date.now() - started;
      log[exit.code === 0 ? 'info' : 'error']({ code: exit.code, signal: exit.signal, ran_ms: ranMs }, ranMs < 1000 ? 'app exited right after starting' : 'app exited');
    }
    const status = { state: 'exited' as const, code: exit.code, signal: exit.signal };
    reporter.report(status);
    exitCode = exitCodeOf(status, SIGNAL_NUMBERS) ?? 1;
  } else {
    await stopped;
  }
  await runtime.shutdown();
  await aws?.close();
  await reporter.stop();
  unhook();
  log.info({ exit_code: exitCode }, 'inner proxy stopped');
  return exitCode;
}
