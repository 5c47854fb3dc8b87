/**
 * Errors raised by the native addon: an OS error number and the call that failed, named the way
 * Node names system errors (`EBADF`, `ENOTTY`, …) so callers can branch on `code` like they do for
 * `net` errors, and `errnoOf()` works on them unchanged.
 */
import util from 'node:util';
import { ProxyError } from '../errors/index.js';

let systemErrors: Map<number, [string, string]> | undefined;

function describeErrno(errno: number): [string, string] {
  systemErrors ??= util.getSystemErrorMap();
  // Node's map is keyed by libuv's negative numbers.
  return systemErrors.get(-Math.abs(errno)) ?? [`ERRNO_${errno}`, `system error ${errno}`];
}

/** `ECONNRESET` for 104, …; `ERRNO_<n>` for numbers Node does not know. */
export function errnoName(errno: number): string {
  return describeErrno(errno)[0];
}

/** libuv's human message for an errno ("connection reset by peer"). */
export function errnoMessage(errno: number): string {
  return describeErrno(errno)[1];
}

export class NativeError extends ProxyError {
  readonly errno: number;
  readonly syscall: string;

  constructor(syscall: string, errno: number) {
    super(errnoName(errno), `${syscall}: ${errnoMessage(errno)}`, { syscall, errno, errnoName: errnoName(errno) });
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** What the addon throws for a failed system call (see native/src/syscall_error.h). */
interface RawSyscallError {
  errno: number;
  syscall: string;
}

function isRawSyscallError(err: unknown): err is RawSyscallError {
  return (
    err instanceof Error &&
    typeof (err as Partial<RawSyscallError>).errno === 'number' &&
    typeof (err as Partial<RawSyscallError>).syscall === 'string'
  );
}

/** A raw addon error becomes a NativeError; anything else (TypeErrors of bad arguments) is returned as is. */
export function toNativeError(err: unknown): unknown {
  return isRawSyscallError(err) ? new NativeError(err.syscall, err.errno) : err;
}
