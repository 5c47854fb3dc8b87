/**
 * Turning socket fds that Node cannot open itself (AF_VSOCK) into ordinary net.Socket / net.Server
 * objects, so every caller keeps using the `net` API and the pump can take the fd back.
 *
 * `new net.Socket({fd})` refuses a vsock fd (libuv's uv_guess_handle calls it UNKNOWN), but a
 * libuv pipe handle adopts any connected stream socket: uv_pipe_open checks no address family,
 * and reads, writes and shutdown are the same syscalls for every family. Node exposes that handle
 * only through the internal pipe_wrap binding, used here and nowhere else.
 */
import net from 'node:net';
import util from 'node:util';
import { NativeError } from './native-error.js';

interface PipeHandle {
  open(fd: number): number;
  close(): void;
}

interface PipeWrapBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number; SERVER: number };
}

let binding: PipeWrapBinding | undefined;

function pipeWrap(): PipeWrapBinding {
  binding ??= (process as unknown as { binding(name: string): PipeWrapBinding }).binding('pipe_wrap');
  return binding;
}

/** A pipe handle that owns `fd`; on failure the fd is still the caller's. */
function adopt(fd: number, type: 'SOCKET' | 'SERVER'): PipeHandle {
  const { Pipe, constants } = pipeWrap();
  const handle = new Pipe(constants[type]);
  const rc = handle.open(fd);
  if (rc !== 0) {
    handle.close();
    // libuv returns negative errnos; NativeError wants the positive OS number.
    throw new NativeError(`uv_pipe_open(${util.getSystemErrorName(rc)})`, -rc);
  }
  return handle;
}

/**
 * A net.Socket over a connected stream-socket fd, which it now owns. `paused`: nothing is read
 * until the caller resumes it (as a listener's pauseOnConnect sockets).
 */
export function socketFromFd(fd: number, opts: { paused?: boolean } = {}): net.Socket {
  const handle = adopt(fd, 'SOCKET');
  return new net.Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    pauseOnCreate: opts.paused === true,
  } as net.SocketConstructorOpts);
}

/**
 * A listening net.Server over a listening stream-socket fd, which it now owns. Connections arrive
 * as net.Sockets exactly as they would from `server.listen()`.
 */
export function serverFromFd(
  fd: number,
  options: net.ServerOpts,
  onConnection: (socket: net.Socket) => void,
  backlog = 511,
): Promise<net.Server> {
  const handle = adopt(fd, 'SERVER');
  const server = net.createServer(options, onConnection);
  // net.Server.listen() adopts ready-made handles only when they are TCP handles. The path it
  // takes for a handle inherited over IPC (setupListenHandle with this._handle already set) works
  // for any stream handle, so install ours just before that step runs.
  const internals = server as unknown as { _listen2: (...args: unknown[]) => unknown; _handle: unknown };
  const setupListenHandle = internals._listen2;
  internals._listen2 = function (this: typeof internals, ...args: unknown[]) {
    this._handle = handle;
    return setupListenHandle.apply(this, args);
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
