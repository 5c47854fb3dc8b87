/**
 * One side of the pair as a running thing: admin endpoint, listeners, and graceful shutdown.
 * The inner and outer add their own parts (app supervisor, status collector) around it.
 */
import { AdminServer } from '../admin/server.js';
import type { SideConfig } from '../config/types.js';
import { Listener } from '../listener/listener.js';
import type { ConnectionHandler } from '../listener/types.js';
import { logger } from '../log/logger.js';
import { describePump } from '../pump/index.js';
import { VSOCK_CID_PARENT } from '../transport/address.js';
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

/** Builds the handler of one listener; each side maps listener kinds to its modules. */
export type ListenerKinds<C extends SideConfig> = (listener: C['listeners'][number]) => ConnectionHandler;

export class SideRuntime<C extends SideConfig = SideConfig> {
  readonly config: C;
  readonly admin = new AdminServer();
  readonly listeners: Listener[];
  private readonly log;
  private started = false;

  constructor(config: C, kinds: ListenerKinds<C>) {
    this.config = config;
    this.log = logger(config.role);
    // Vsock settings come first: listeners below may be on vsock addresses.
    configureSideVsock(config);
    this.listeners = config.listeners.map((l: C['listeners'][number]) => new Listener({ name: l.name, address: l.address, maxConnections: l.maxConnections, handler: kinds(l) }));
    this.admin.addReadinessCheck('listeners', () => ({ ready: this.started, detail: this.started ? `${this.listeners.length} listening` : 'starting' }));
  }

  async start(): Promise<void> {
    const emulation = vsockSettings().emulationDir;
    if (emulation) this.log.warn({ dir: emulation, cid: vsockSettings().localCid }, 'vsock is EMULATED by Unix sockets (development mode)');
    // Once per process: which pump moves the pass-through bytes, and why that one.
    const pump = describePump();
    this.log.info({ pump: pump.kind }, pump.summary);
    if (this.config.admin.address) await this.admin.start(this.config.admin.address);
    for (const l of this.listeners) await l.start();
    this.started = true;
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
