/**
 * The outer as the enclave's supervisor: launch it with nitro-cli (serialised per host), wait for
 * the inner's first status, stream its console into our logs in debug mode, watch
 * describe-enclaves until it is gone, and terminate it on stop. What the app's exit code means for
 * the outer is decided by the caller (proxy-outer/main.ts); this module reports how the enclave ended.
 */
import { logger } from '../../shared/log/logger.js';
import { messageOf, ProxyError } from '../../shared/errors/index.js';
import { present } from '../../shared/util/checked.js';
import { LineSplitter } from '../../shared/util/line-splitter.js';
import type { StatusCollector } from '../status/collector.js';
import { withLaunchLock } from './launch-lock.js';
import { NitroCli, type RunInfo } from './nitro-cli.js';

const log = logger('enclave');

export interface EnclaveLaunch {
  eif: string;
  cpuCount: number;
  memoryMib: number;
  debugMode: boolean;
  cid: number;
  /** From launch to the inner's first status on vsock 17000. */
  readyTimeoutMs: number;
  /** How often describe-enclaves is asked whether the enclave still runs. */
  watchIntervalMs: number;
}

export class EnclaveSupervisor {
  private info: RunInfo | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private consoleProc: ReturnType<NitroCli['console']> | undefined;
  private resolveGone: () => void = () => {};
  private terminating = false;
  /** Settles once describe-enclaves no longer lists the enclave (or after terminate()). */
  readonly gone: Promise<void> = new Promise((resolve) => {
    this.resolveGone = resolve;
  });

  constructor(
    private readonly launch: EnclaveLaunch,
    private readonly cli: NitroCli = new NitroCli(),
  ) {}

  get enclaveId(): string | undefined {
    return this.info?.enclaveId;
  }

  /** Launches the enclave; throws a NitroCliError (one message, with the fix) when nitro-cli refuses. */
  async start(): Promise<RunInfo> {
    const l = this.launch;
    log.info(
      { eif: l.eif, cpu_count: l.cpuCount, memory_mib: l.memoryMib, cid: l.cid, debug_mode: l.debugMode, nitro_cli: this.cli.binary },
      'launching the enclave',
    );
    this.info = await withLaunchLock(log, () =>
      this.cli.runEnclave({ eif: l.eif, cpuCount: l.cpuCount, memoryMib: l.memoryMib, cid: l.cid, debugMode: l.debugMode }),
    );
    log.info(
      {
        enclave_id: this.info.enclaveId,
        enclave_cid: this.info.enclaveCid,
        cpu_count: this.info.cpuCount,
        memory_mib: this.info.memoryMib,
      },
      'enclave started',
    );
    if (this.info.enclaveCid !== l.cid)
      log.warn(
        { asked: l.cid, got: this.info.enclaveCid },
        'nitro-cli gave the enclave another CID than enclave.cid; the pair dials enclave.cid',
      );
    if (l.debugMode) this.streamConsole(this.info.enclaveId);
    this.watch(this.info.enclaveId);
    return this.info;
  }

  /** Resolves at the inner's first status; rejects when none comes within readyTimeoutMs or the enclave ends first. */
  waitForInner(status: StatusCollector): Promise<void> {
    if (status.latest) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        status.off('status', onStatus);
        reject(
          new ProxyError(
            'enclave_not_ready',
            `the enclave started but its inner proxy did not report on vsock 17000 within ${this.launch.readyTimeoutMs / 1000} s\n` +
              "  fix: check that the EIF's entrypoint is `enclaver-proxy` with role inner and that enclave.cid matches; run with enclave.debug_mode: true to see the console",
            { enclave_id: this.info?.enclaveId },
          ),
        );
      }, this.launch.readyTimeoutMs);
      const onStatus = () => {
        clearTimeout(timer);
        status.off('status', onStatus);
        resolve();
      };
      status.on('status', onStatus);
      void this.gone.then(() => {
        clearTimeout(timer);
        status.off('status', onStatus);
        reject(
          new ProxyError(
            'enclave_ended_early',
            'the enclave ended before its inner proxy reported (see the console with enclave.debug_mode: true)',
            { enclave_id: this.info?.enclaveId },
          ),
        );
      });
    });
  }

  /** terminate-enclave (once; an enclave already gone is fine). */
  async terminate(): Promise<void> {
    if (this.terminating) return this.gone;
    this.terminating = true;
    if (!this.info) {
      // Never launched: nothing to terminate.
      this.resolveGone();
      return this.gone;
    }
    clearInterval(this.watchTimer);
    const enclaveId = this.info.enclaveId;
    try {
      const listed = (await this.cli.describeEnclaves()).some((e) => e.enclaveId === enclaveId);
      if (listed) {
        await this.cli.terminateEnclave(enclaveId);
        log.info({ enclave_id: enclaveId }, 'enclave terminated');
      }
    } catch (err) {
      log.error({ enclave_id: enclaveId, err: messageOf(err) }, 'could not terminate the enclave');
    }
    this.consoleProc?.kill();
    this.resolveGone();
    return this.gone;
  }

  private watch(enclaveId: string): void {
    let asking = false;
    this.watchTimer = setInterval(() => {
      if (asking) return;
      asking = true;
      this.cli
        .describeEnclaves()
        .then(
          (list) => {
            const me = list.find((e) => e.enclaveId === enclaveId);
            if (!me) {
              log.info({ enclave_id: enclaveId }, 'enclave is gone (describe-enclaves no longer lists it)');
              clearInterval(this.watchTimer);
              this.consoleProc?.kill();
              this.resolveGone();
            }
          },
          (err: unknown) => log.warn({ err: messageOf(err) }, 'describe-enclaves failed; will ask again'),
        )
        .finally(() => {
          asking = false;
        });
    }, this.launch.watchIntervalMs);
  }

  /** Debug mode only: the enclave's serial console, one log record per line. */
  private streamConsole(enclaveId: string): void {
    const proc = this.cli.console(enclaveId);
    this.consoleProc = proc;
    const emit = (text: string[]) => {
      for (const line of text) log.info({ component: 'console', enclave_id: enclaveId, line }, 'console');
    };
    // One splitter per stream: a partial line of one must not be glued to the other's.
    const out = new LineSplitter();
    const err = new LineSplitter();
    // nitro-cli.console() spawns with both pipes; a double that forgot one is a bug to name.
    present(proc.stdout, 'nitro-cli console stdout').on('data', (d: Buffer) => emit(out.push(d)));
    present(proc.stderr, 'nitro-cli console stderr').on('data', (d: Buffer) => emit(err.push(d)));
    proc.once('error', (e) => log.warn({ err: e.message }, 'nitro-cli console could not start'));
    proc.once('close', () => emit([...out.end(), ...err.end()]));
  }
}
