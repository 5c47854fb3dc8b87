/**
 * The native addon (native/, built by node-gyp at `npm install`): AF_VSOCK sockets, the splice(2)
 * pump, the NSM ioctl, and the system calls of the enclave bootstrap and supervisor. Optional by
 * design: where it did not build (another OS, no toolchain) `loadNativeAddon()` returns null and
 * every caller has a JavaScript path (or, for the bootstrap, says loudly what it cannot do).
 *
 * Everything the addon throws for a failed system call reaches callers as a `NativeError` named by
 * errno. This module logs nothing: startup code reports what was loaded (see `describePump()`).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageOf } from '../errors/index.js';
import { toNativeError, type NativeError } from './native-error.js';

export { NativeError, errnoName, errnoMessage } from './native-error.js';

/** Set to `0` to run without the addon (the JS pump; no real vsock). Used by tests and `pair-js`. */
export const ENV_NATIVE = 'ENCLAVER_NATIVE';

const ADDON_RELATIVE_PATH = path.join('native', 'build', 'Release', 'enclaver_native.node');

export interface NativePumpSettings {
  /** Pump threads, each with its own epoll set and pipe pool. */
  threads: number;
  /** Capacity asked of F_SETPIPE_SZ for each pipe. */
  pipeSize: number;
  /** Ceiling on the pages of all pipes the pump owns (pipe-user-pages-soft accounting). */
  pipeBudgetPages: number;
  /** Empty pipes kept open per thread for reuse. */
  maxIdlePipes: number;
}

export interface NativePumpStart {
  /**
   * Both fds belong to the pump from the call on, also when it throws a NativeError; only a
   * TypeError (malformed options) leaves them with the caller.
   */
  downstreamFd: number;
  upstreamFd: number;
  headUp?: Buffer;
  headDown?: Buffer;
  idleTimeoutMs?: number;
  /** false: read/write copy only (to exercise the fallback path). */
  splice?: boolean;
}

export interface NativePumpOutcome {
  bytesUp: number;
  bytesDown: number;
  closedBy: 'downstream' | 'upstream' | 'aborted' | 'idle_timeout';
  errorSide?: 'downstream' | 'upstream';
  errno?: number;
  /** Some bytes went through the copy path (splice refused, or the pipe budget was spent). */
  copied: boolean;
  durationMs: number;
}

export interface NativePumpStats {
  running: boolean;
  threads: number;
  active: number;
  pipeSizeWanted: number;
  /** Capacity the kernel actually gave the most recent pipe (0 before the first). */
  pipeCapacity: number;
  pipeBudgetPages: number;
  pipePages: number;
  idlePipes: number;
  spliceRefused: number;
  budgetCopies: number;
}

export interface NativeAddon {
  /** Where the addon was loaded from. */
  readonly path: string;
  /** A close-on-exec duplicate owned by the caller. */
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  /** A bound, listening, non-blocking AF_VSOCK socket owned by the caller. */
  vsockListen(cid: number, port: number, backlog: number): number;
  /**
   * Starts a non-blocking connect; the callback runs once, later, with the connected fd (owned by
   * the caller) or the error. Returns a token for `vsockConnectCancel`. Throws for errors the
   * kernel reports at once.
   */
  vsockConnect(cid: number, port: number, timeoutMs: number, callback: (err: NativeError | null, fd?: number) => void): number;
  /** Abandons a pending connect (its fd is closed, its callback never runs). */
  vsockConnectCancel(token: number): boolean;
  vsockLocalCid(): number;
  vsockSocketSupported(): boolean;
  vsockAddress(fd: number, peer: boolean): { cid: number; port: number };
  /** ioctl(fd, NSM_IOCTL_RAW) with one CBOR request; returns the response bytes. */
  nsmIoctl(fd: number, request: Buffer, maxResponse: number): Buffer;
  /** Only before the first `pumpStart`. */
  pumpConfigure(settings: Partial<NativePumpSettings>): void;
  pumpStart(options: NativePumpStart, onDone: (outcome: NativePumpOutcome) => void): number;
  /** The connection's callback still runs once, with closedBy "aborted". */
  pumpAbort(id: number): boolean;
  pumpStats(): NativePumpStats;
  spliceProbe(): { supported: boolean; errno?: number };
  /** Sets IFF_UP on the interface (SIOCSIFFLAGS); returns whether it was down. */
  interfaceUp(name: string): boolean;
  interfaceIsUp(name: string): boolean;
  /** RNDADDENTROPY on /dev/random: mixes the bytes in and credits them as entropy. */
  addEntropy(bytes: Buffer): void;
  /** clock_settime(CLOCK_REALTIME). */
  setRealtimeClock(msSinceEpoch: number): void;
  /** waitpid(pid, WNOHANG): null while it runs. */
  reapChild(pid: number): { code?: number; signal?: number } | null;
  /** prctl(PR_SET_CHILD_SUBREAPER): orphans of descendants become our children. */
  setChildSubreaper(): void;
  /** An fd holding an exclusive flock on `path` (created if missing), or null when another process holds it. */
  tryLockFile(path: string): number | null;
  /** A listening TCP socket on an IP literal (port 0: ephemeral), owned by the caller. */
  fastBindTcp(host: string, port: number, backlog: number): { fd: number; port: number };
  /** A listening Unix socket, owned by the caller. */
  fastBindUnix(path: string, backlog: number): number;
  /** Starts a fast-path listener on the pump threads; `onBatch` runs on the main thread. */
  fastListen(options: FastListenOptions, onBatch: (batch: FastBatch) => void): number;
  /** Stop accepting; each pump thread then reports `stopped`. */
  fastStop(handle: number): void;
  /** End every connection of the listener now (each is reported, closedBy aborted). */
  fastAbortAll(handle: number): void;
  /** A handed-back connection ended (it counted against max_connections until now). */
  fastRelease(handle: number): void;
  /** After the stop and the last connection: no batch follows. */
  fastClose(handle: number): void;
  /** The identity of TLS handshakes that start from now on; throws when OpenSSL refuses it. */
  fastSetTls(handle: number, identity: FastTlsIdentity): void;
  /** Why a route glob is outside what the native HTTP engine matches exactly ('' when inside). */
  httpGlobProblem(pattern: string, host: boolean): string;
  /** Whether the native HTTP engine's matcher matches `subject` against `pattern` (tests hold it equal to minimatch). */
  httpGlobMatch(pattern: string, host: boolean, subject: string): boolean;
}

/** Where a fast-path listener dials: the cluster's first endpoint, as a socket address. */
export type FastEndpoint =
  | { family: 'ipv4' | 'ipv6'; address: string; port: number }
  | { family: 'unix'; path: string }
  | { family: 'vsock'; cid: number; port: number };

/** The native HTTP/1.1 engine of an `http` listener (native/src/http/http_session.h). */
export interface FastHttpOptions {
  /** Routes in order; `cluster` indexes `endpoints`; every glob inside the native subset (glob.h). */
  routes: { name: string; cluster: number; hosts: readonly string[]; paths: readonly string[] }[];
  defaultCluster?: number;
  /** Per cluster, its first endpoint. */
  endpoints: FastEndpoint[];
  /** Paths the listener answers itself (in JS): a request for one is handed back. */
  localPaths: string[];
  maxHeaderBytes: number;
  maxHeaders: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  upstreamIdleMs: number;
  /** The JS path's 408 answer, written as it is when a head is too slow. */
  timeoutAnswer: Buffer;
  /** The JS path's 400, written when a chunked request body's framing fails after it was forwarded in part. */
  badRequestAnswer: Buffer;
  /** true: one record per request (someone writes request lines); false: per-route sums in `routes`. */
  requestRecords: boolean;
  /** The route latency histogram's bounds, seconds (proxy-inner/http-ingress/metrics.ts). */
  bucketsSeconds: readonly number[];
  /** Reason phrases by status (Node's http.STATUS_CODES). */
  reasons: Record<number, string | undefined>;
  proto: 'http' | 'https';
}

export interface FastListenOptions {
  /** A listening, non-blocking socket; the fast path owns it from the call on. */
  listenFd: number;
  /** Pass-through listeners: where to dial. */
  endpoint?: FastEndpoint;
  /** HTTP listeners: the engine's configuration (then `endpoint` is unused). */
  http?: FastHttpOptions;
  expectProxy: boolean;
  sendProxy: boolean;
  /** 0: no limit. */
  maxConnections: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** How long the pump thread waits for a PROXY header before handing the connection to JS. */
  headerTimeoutMs: number;
  /** false: connections that end without an error are reported only as sums (nobody logs them). */
  records: boolean;
  /** Terminate TLS with the identity `fastSetTls` sets (until then, connections are handed to JS). */
  tls?: boolean;
  /** A TLS handshake not done by then fails (tls_handshake_timeout). */
  handshakeTimeoutMs?: number;
}

/** A TLS identity for `fastSetTls`: PEM text, and the ciphers in OpenSSL's syntax. */
export interface FastTlsIdentity {
  certificate: string;
  key: string;
  cipherList: string;
  cipherSuites: string;
}

/**
 * A connection committed to the pump thread (its TLS handshake began) that never reached the
 * upstream: the handshake failed or timed out (`stage` tls, `code` set), or the dial after it
 * failed (`stage` cluster, `errno` set).
 */
export interface FastNotProxied {
  client?: string;
  stage: 'tls' | 'cluster';
  code?: string;
  errno?: number;
  message: string;
  durationMs: number;
}

export interface FastClosed {
  /** "ip:port" of the client; absent when it has no IP address. */
  client?: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  closedBy: NativePumpOutcome['closedBy'];
  errorSide?: 'downstream' | 'upstream';
  errno?: number;
  /** Some bytes were copied (splice refused, or the pipe budget spent). */
  copied: boolean;
}

/** A connection the fast path hands to JS (its dial failed, its header needs JS): the fd and what was read. */
export interface FastFallback {
  fd: number;
  head: Buffer;
  /** Handed back by the HTTP engine at a request boundary, after its PROXY header and `served` requests. */
  resumed?: FastResumed;
}

export interface FastResumed {
  /** The native connection number (conn_id of its access lines). */
  conn: number;
  clientAddress?: string;
  clientPort?: number;
  served: number;
}

/** One request the HTTP engine served: the access line's and the route metrics' facts. */
export interface FastRequest {
  conn: number;
  method: string;
  host: string;
  path: string;
  route: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  client?: string;
  error?: string;
}

export interface FastBatch {
  /** Connections that started pumping. */
  accepted: number;
  /** Refused at max_connections. */
  rejected: number;
  /** Connections that ended cleanly, summed (when records are off); `closed` has the others. */
  summed: { count: number; bytesIn: number; bytesOut: number; durationMs: number; copied: number };
  /**
   * One pump thread stopped accepting (everything it accepted is reported by now); once every
   * thread (`pumpStats().threads`) has said so, the listening socket is closed.
   */
  stopped: boolean;
  closed: FastClosed[];
  fallbacks: FastFallback[];
  notProxied: FastNotProxied[];
  /** HTTP listeners: the requests served natively since the last batch (requestRecords). */
  requests: FastRequest[];
  /** HTTP listeners without request records: the requests since the last batch, summed per route. */
  routes: FastRouteSums[];
}

/** Requests of one route summed: by status class (hundreds digit), per histogram bucket (not cumulative, +Inf last). */
export interface FastRouteSums {
  route: string;
  byClass: number[];
  perBucket: number[];
  sumSeconds: number;
  count: number;
}

export type NativeAddonStatus =
  | { loaded: true; path: string }
  | { loaded: false; reason: 'disabled' | 'not_built' | 'load_failed' | 'unsupported_platform'; detail: string };

/** The module as the addon exports it: the same functions, raw errors and all. */
type RawAddon = Omit<NativeAddon, 'path' | 'vsockConnect'> & {
  vsockConnect(cid: number, port: number, timeoutMs: number, callback: (err: unknown, fd?: number) => void): number;
};

function rethrowTyped<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw toNativeError(err);
  }
}

/** Every addon function, wrapped so that raw syscall errors reach callers as NativeErrors. */
function typed(raw: RawAddon, addonPath: string): NativeAddon {
  return {
    path: addonPath,
    dupFd: (fd) => rethrowTyped(() => raw.dupFd(fd)),
    closeFd: (fd) => rethrowTyped(() => raw.closeFd(fd)),
    vsockListen: (cid, port, backlog) => rethrowTyped(() => raw.vsockListen(cid, port, backlog)),
    vsockConnect: (cid, port, timeoutMs, callback) =>
      rethrowTyped(() =>
        raw.vsockConnect(
          cid,
          port,
          timeoutMs,
          // A non-function goes through as is, for the addon to reject.
          typeof callback === 'function' ? (err, fd) => callback(err == null ? null : (toNativeError(err) as NativeError), fd) : callback,
        ),
      ),
    vsockConnectCancel: (token) => rethrowTyped(() => raw.vsockConnectCancel(token)),
    vsockLocalCid: () => rethrowTyped(() => raw.vsockLocalCid()),
    vsockSocketSupported: () => rethrowTyped(() => raw.vsockSocketSupported()),
    vsockAddress: (fd, peer) => rethrowTyped(() => raw.vsockAddress(fd, peer)),
    nsmIoctl: (fd, request, maxResponse) => rethrowTyped(() => raw.nsmIoctl(fd, request, maxResponse)),
    pumpConfigure: (settings) => rethrowTyped(() => raw.pumpConfigure(settings)),
    pumpStart: (options, onDone) => rethrowTyped(() => raw.pumpStart(options, onDone)),
    pumpAbort: (id) => rethrowTyped(() => raw.pumpAbort(id)),
    pumpStats: () => rethrowTyped(() => raw.pumpStats()),
    spliceProbe: () => rethrowTyped(() => raw.spliceProbe()),
    interfaceUp: (name) => rethrowTyped(() => raw.interfaceUp(name)),
    interfaceIsUp: (name) => rethrowTyped(() => raw.interfaceIsUp(name)),
    addEntropy: (bytes) => rethrowTyped(() => raw.addEntropy(bytes)),
    setRealtimeClock: (ms) => rethrowTyped(() => raw.setRealtimeClock(ms)),
    reapChild: (pid) => rethrowTyped(() => raw.reapChild(pid)),
    setChildSubreaper: () => rethrowTyped(() => raw.setChildSubreaper()),
    tryLockFile: (p) => rethrowTyped(() => raw.tryLockFile(p)),
    fastBindTcp: (host, port, backlog) => rethrowTyped(() => raw.fastBindTcp(host, port, backlog)),
    fastBindUnix: (socketPath, backlog) => rethrowTyped(() => raw.fastBindUnix(socketPath, backlog)),
    fastListen: (options, onBatch) => rethrowTyped(() => raw.fastListen(options, onBatch)),
    fastStop: (handle) => rethrowTyped(() => raw.fastStop(handle)),
    fastAbortAll: (handle) => rethrowTyped(() => raw.fastAbortAll(handle)),
    fastRelease: (handle) => rethrowTyped(() => raw.fastRelease(handle)),
    fastClose: (handle) => rethrowTyped(() => raw.fastClose(handle)),
    fastSetTls: (handle, identity) => rethrowTyped(() => raw.fastSetTls(handle, identity)),
    httpGlobProblem: (pattern, host) => rethrowTyped(() => raw.httpGlobProblem(pattern, host)),
    httpGlobMatch: (pattern, host, subject) => rethrowTyped(() => raw.httpGlobMatch(pattern, host, subject)),
  };
}

/** The package root: the nearest directory above this module that holds package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return dir;
}

let cached: { addon: NativeAddon | null; status: NativeAddonStatus } | undefined;

function load(): { addon: NativeAddon | null; status: NativeAddonStatus } {
  if (process.env[ENV_NATIVE] === '0') {
    return { addon: null, status: { loaded: false, reason: 'disabled', detail: `${ENV_NATIVE}=0` } };
  }
  if (process.platform !== 'linux') {
    return {
      addon: null,
      status: { loaded: false, reason: 'unsupported_platform', detail: `the native addon is Linux-only (this is ${process.platform})` },
    };
  }
  const addonPath = path.join(packageRoot(), ADDON_RELATIVE_PATH);
  if (!fs.existsSync(addonPath)) {
    return {
      addon: null,
      status: {
        loaded: false,
        reason: 'not_built',
        detail: `${addonPath} does not exist (the build at npm install failed or was skipped)`,
      },
    };
  }
  try {
    const raw = createRequire(import.meta.url)(addonPath) as RawAddon;
    return { addon: typed(raw, addonPath), status: { loaded: true, path: addonPath } };
  } catch (err) {
    return { addon: null, status: { loaded: false, reason: 'load_failed', detail: `${addonPath}: ${messageOf(err)}` } };
  }
}

/** The addon, or null when it is disabled, missing or unloadable. Cached; logs nothing. */
export function loadNativeAddon(): NativeAddon | null {
  cached ??= load();
  return cached.addon;
}

/** Why the addon is (not) in use, for startup messages and `enclaver-proxy doctor`. */
export function nativeAddonStatus(): NativeAddonStatus {
  cached ??= load();
  return cached.status;
}
