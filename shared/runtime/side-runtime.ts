/**
 * One side of the pair as a running thing: admin endpoint, listeners, and graceful shutdown.
 * The inner and outer add their own parts (app supervisor, status collector) around it.
 */
import { AdminServer } from '../admin/server.js';
import { addressKeyOf, adminAddressKeyOf } from '../config/address-keys.js';
import type { SideConfig } from '../config/types.js';
import { Listener } from '../listener/listener.js';
import type { ConnectionHandler } from '../listener/types.js';
import { logger, type Logger } from '../log/logger.js';
import { registerProcessMetrics } from '../metrics/registry.js';
import { describePump } from '../pump/index.js';
import { errnoOf, ProxyError, TransportError } from '../errors/index.js';
import { formatAddress, VSOCK_CID_PARENT, type Address } from '../transport/address.js';
import { configureVsock, envLocalCid, envParentCid, vsockSettings } from '../transport/vsock.js';

export const DEFAULT_INNER_CID = 16;

/**
 * Where this side's vsock addresses lead: emulation directory and local CID from config, else from
 * the environment (the local pair sets it for its inner child), else the defaults. Call it before
 * opening any vsock connection; repeating it is harmless.
 */
export function configureSideVsock(config: SideConfig): void {
  configureVsock({
    emulationDir: config.vsock.emulationDir ?? vsockSettings().emulationDir,
    localCid: config.vsock.cid ?? envLocalCid() ?? (config.role === 'inner' ? DEFAULT_INNER_CID : VSOCK_CID_PARENT),
    parentCid: config.vsock.parentCid ?? envParentCid() ?? VSOCK_CID_PARENT,
  });
}

/**
 * Binds, and when the address is taken or not allowed, says which listener, which address and which
 * config key or flag moves it: "listen EADDRINUSE 127.0.0.1:10000" alone named none of them.
 */
async function bindOrExplain(bind: () => Promise<unknown>, what: string, address: Address, key: string | undefined): Promise<void> {
  try {
    await bind();
  } catch (err) {
    const errno = err instanceof TransportError ? err.errno : errnoOf(err);
    const why = errno === undefined ? undefined : BIND_ERRORS[errno];
    if (errno === undefined || !why) throw err;
    const fix = key ? `change ${key}` : 'change its address in the config';
    const message = `${what} cannot listen on ${formatAddress(address)}: ${why} (${errno}); ${fix}`;
    throw new ProxyError(`listen_${errno.toLowerCase()}`, message, { address: formatAddress(address), errno, key }, { cause: err });
  }
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'the address is in use by another process or by another listener of this config',
  EACCES: 'permission denied, ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'no interface of this machine has that address',
};

/**
 * The one line that says a side is ready: every listener and the admin endpoint accept (and, in
 * the enclave, sealed TLS keys are open). `startup_ms` counts from the process's start, Node's own
 * boot included, so it is what a supervisor waited for (benchmarks/startup.ts measures it from
 * outside too).
 */
export function logReady(log: Logger, message: string, runtime: { readonly listeners: readonly unknown[] }): void {
  log.info({ listeners: runtime.listeners.length, startup_ms: Math.round(performance.now()) }, message);
}

/** A listener of a side with the handler of its kind (each side maps kinds to its modules). */
export interface SideListener<C extends SideConfig> {
  listener: C['listeners'][number];
  handler: ConnectionHandler;
}

export class SideRuntime<C extends SideConfig = SideConfig> {
  readonly config: C;
  readonly admin = new AdminServer();
  readonly listeners: Listener[];
  /** Each listener's config, in the order of `listeners` (bind errors name the key that moves it). */
  private readonly configured: C['listeners'][number][];
  private readonly log;
  private started = false;

  constructor(config: C, listeners: readonly SideListener<C>[]) {
    this.config = config;
    this.log = logger(config.role);
    // Vsock settings come first: listeners below may be on vsock addresses.
    configureSideVsock(config);
    this.configured = listeners.map(({ listener }) => listener);
    this.listeners = listeners.map(
      ({ listener: l, handler }) => new Listener({ name: l.name, address: l.address, maxConnections: l.maxConnections, handler }),
    );
    this.admin.addReadinessCheck('listeners', () => ({
      ready: this.started,
      detail: this.started ? `${this.listeners.length} listening` : 'starting',
    }));
  }

  async start(): Promise<void> {
    const emulation = vsockSettings().emulationDir;
    if (emulation) this.log.warn({ dir: emulation, cid: vsockSettings().localCid }, 'vsock is EMULATED by Unix sockets (development mode)');
    // Once per process: which pump moves the pass-through bytes, and why that one.
    const pump = describePump();
    this.log.info({ pump: pump.kind }, pump.summary);
    const admin = this.config.admin.address;
    if (admin) {
      const maxConnections = this.config.admin.maxConnections;
      await bindOrExplain(() => this.admin.start(admin, maxConnections), 'the admin endpoint', admin, adminAddressKeyOf(this.config));
    }
    for (const [i, l] of this.listeners.entries()) {
      const configured = this.configured[i];
      if (!configured) continue;
      await bindOrExplain(() => l.start(), `listener "${configured.name}"`, configured.address, addressKeyOf(configured));
    }
    this.started = true;
    // Not needed to accept, so not on the way to the ready line (shared/metrics/registry.ts).
    setImmediate(registerProcessMetrics);
  }

  /** Stop accepting on every listener; open connections continue. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.stopAccepting()));
  }

  /** Wait for open connections until the configured drain timeout, then close what is left. */
  async drain(): Promise<void> {
    const deadline = Date.now() + this.config.shutdown.drainTimeoutMs;
    await Promise.all(this.listeners.map((l) => l.drain(deadline)));
  }

  /** The whole graceful shutdown: stop accepting, drain, close the admin endpoint. */
  async shutdown(): Promise<void> {
    await this.stopAccepting();
    await this.drain();
    await this.admin.close();
  }
}
