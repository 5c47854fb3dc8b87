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
import { outerListenerKinds } from './listeners.js';
import { StatusCollector } from './status/collector.js';
import { Imdsv2Client } from './imds-relay/imdsv2-client.js';
import { startImdsRelay } from './imds-relay/relay-server.js';
import { VSOCK_CID_ANY } from '../shared/transport/address.js';
import type { Listening } from '../shared/transport/index.js';
import { PairPort } from '../shared/wire/ports.js';

const log = logger('outer');

export interface OuterHandle {
  runtime: SideRuntime;
  status: StatusCollector;
  shutdown(): Promise<void>;
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
    async shutdown() {
      await runtime.shutdown();
      await imdsRelay?.close();
      await status.close();
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
  const code = await new Promise<number>((resolve) => {
    const unhook = onShutdownSignal(() => { unhook(); resolve(0); });
    if (config.enclave.exitWithApp) {
      outer.status.on('status', (s) => {
        const c = exitCodeOf(s, SIGNAL_NUMBERS);
        if (c !== undefined) { unhook(); resolve(c); }
      });
    }
  });
  await outer.shutdown();
  log.info({ exit_code: code }, 'outer proxy stopped');
  return code;
}
