/**
 * The addon's own surface: fd helpers, the NSM ioctl's error path (no /dev/nsm here), the pump's
 * argument and error handling, its splice and copy paths, and errno naming.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  NativeError,
  errnoName,
  loadNativeAddon,
  nativeAddonStatus,
  type NativeAddon,
  type NativePumpOutcome,
} from '../../../shared/native/addon.js';
import { rawSocketPair } from '../../helpers/socket-fds.js';

const addon = loadNativeAddon();
const status = nativeAddonStatus();
const skip = addon ? false : `native addon unavailable (${status.loaded ? '' : `${status.reason}: ${status.detail}`})`;
if (skip) console.log(`# skipping: ${skip}`);

/** An fd number nothing in this process uses (far above anything the suite opens). */
const CLOSED_FD = 65000;

function assertNativeError(fn: () => unknown, code: string, syscall: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NativeError, `expected a NativeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.syscall, syscall);
    assert.equal(err.context.errnoName, code);
    return true;
  });
}

function pumpOnce(a: NativeAddon, downstreamFd: number, upstreamFd: number, extra: { splice?: boolean } = {}): Promise<NativePumpOutcome> {
  return new Promise((resolve) => {
    a.pumpStart({ downstreamFd, upstreamFd, ...extra }, resolve);
  });
}

describe('native addon', { skip }, () => {
  const a = addon as NativeAddon;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-native-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('names errnos the way Node does', () => {
    assert.equal(errnoName(os.constants.errno.ECONNRESET), 'ECONNRESET');
    assert.equal(errnoName(os.constants.errno.EBADF), 'EBADF');
    assert.equal(errnoName(99999), 'ERRNO_99999');
  });

  it('dupFd gives an independent fd; closeFd releases it', () => {
    const fd = fs.openSync(path.join(tmp, 'f'), 'w');
    const copy = a.dupFd(fd);
    assert.notEqual(copy, fd);
    fs.closeSync(fd);
    fs.writeSync(copy, 'still open through the duplicate');
    a.closeFd(copy);
    assert.equal(fs.readFileSync(path.join(tmp, 'f'), 'utf8'), 'still open through the duplicate');
    assertNativeError(() => a.closeFd(copy), 'EBADF', /^close$/);
  });

  it('dupFd on a closed fd throws NativeError EBADF naming the call', () => {
    assertNativeError(() => a.dupFd(CLOSED_FD), 'EBADF', /F_DUPFD_CLOEXEC/);
  });

  it('rejects fds that are not non-negative integers with a TypeError', () => {
    for (const bad of [-1, 1.5, Number.NaN, '3', undefined]) {
      assert.throws(() => a.dupFd(bad as number), TypeError);
    }
  });

  it('nsmIoctl on a device that is not the NSM fails with ENOTTY', () => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      assertNativeError(() => a.nsmIoctl(fd, Buffer.from([0xa1]), 4096), 'ENOTTY', /NSM_IOCTL_RAW/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('nsmIoctl on a closed fd fails with EBADF, and validates its arguments', () => {
    assertNativeError(() => a.nsmIoctl(CLOSED_FD, Buffer.from([0xa1]), 4096), 'EBADF', /NSM_IOCTL_RAW/);
    assert.throws(() => a.nsmIoctl(0, 'not a buffer' as unknown as Buffer, 10), TypeError);
    assert.throws(() => a.nsmIoctl(0, Buffer.alloc(1), 0), TypeError);
  });

  it('vsockAddress on a socket of another family fails with EAFNOSUPPORT', async () => {
    const { fd, peer } = await rawSocketPair(a);
    try {
      assertNativeError(() => a.vsockAddress(fd, true), 'EAFNOSUPPORT', /getpeername/);
    } finally {
      a.closeFd(fd);
      peer.destroy();
    }
  });

  it('vsockConnect rejects bad arguments before creating any socket', () => {
    assert.throws(() => a.vsockConnect(-1, 1, 100, () => {}), TypeError);
    assert.throws(() => a.vsockConnect(1, 2 ** 32, 100, () => {}), TypeError);
    assert.throws(() => a.vsockConnect(1, 1, 100, undefined as unknown as () => void), TypeError);
  });

  it('spliceProbe finds splice working on this kernel', () => {
    assert.deepEqual(a.spliceProbe(), { supported: true });
  });

  it('pumpStart takes ownership of both fds even when it throws (EBADF on one)', async () => {
    const { fd, peer } = await rawSocketPair(a);
    assertNativeError(() => a.pumpStart({ downstreamFd: fd, upstreamFd: CLOSED_FD }, () => {}), 'EBADF', /F_GETFL/);
    // The pump closed the good fd too: closing it again fails, and the peer sees the end.
    assertNativeError(() => a.closeFd(fd), 'EBADF', /^close$/);
    await new Promise((r) => {
      peer.once('end', r);
      peer.resume();
    });
    peer.destroy();
  });

  it('pumpStart rejects malformed options with a TypeError and leaves the fds alone', async () => {
    const { fd, peer } = await rawSocketPair(a);
    assert.throws(() => a.pumpStart({ downstreamFd: -1, upstreamFd: fd }, () => {}), TypeError);
    assert.throws(() => a.pumpStart({ downstreamFd: fd, upstreamFd: fd }, () => {}), TypeError);
    assert.throws(() => a.pumpStart({ downstreamFd: fd, upstreamFd: CLOSED_FD, headUp: 'text' as unknown as Buffer }, () => {}), TypeError);
    a.closeFd(fd); // still ours
    peer.destroy();
  });

  it('reports fds epoll cannot watch (regular files) through the completion, as EPERM', async () => {
    const down = fs.openSync(path.join(tmp, 'down'), 'w+');
    const up = fs.openSync(path.join(tmp, 'up'), 'w+');
    const outcome = await pumpOnce(a, down, up);
    assert.equal(outcome.errorSide, 'downstream');
    assert.equal(errnoName(outcome.errno!), 'EPERM');
    assert.equal(outcome.closedBy, 'downstream');
    // Both were closed by the pump.
    assert.throws(() => fs.fstatSync(down), /EBADF/);
    assert.throws(() => fs.fstatSync(up), /EBADF/);
  });

  for (const splice of [true, false]) {
    it(`moves a burst by ${splice ? 'splice through a pooled pipe' : 'the read/write copy path'}, a small message by copy`, async () => {
      const x = await rawSocketPair(a);
      const y = await rawSocketPair(a);
      const outcomeP = pumpOnce(a, x.fd, y.fd, { splice });
      const burst = Buffer.alloc(4 << 20, 7);
      const got = new Promise<number>((resolve) => {
        let n = 0;
        y.peer.on('data', (d: Buffer) => {
          n += d.length;
        });
        y.peer.once('end', () => resolve(n));
      });
      // A small message first (copied either way), then a burst (spliced unless splice is off).
      x.peer.write('small');
      x.peer.end(burst);
      assert.equal(await got, 5 + burst.length);
      y.peer.end();
      const outcome = await outcomeP;
      assert.equal(outcome.bytesUp, 5 + burst.length);
      // `copied` reports a fallback (splice refused or off, no pipe in budget), not the small-message path.
      assert.equal(outcome.copied, !splice);
      if (splice) assert.ok(a.pumpStats().pipeCapacity >= 4096);
      x.peer.destroy();
      y.peer.destroy();
    });
  }

  it('pumpAbort of an unknown id is a no-op; pumpConfigure after the first connection is refused', async () => {
    assert.equal(a.pumpAbort(123456789), false);
    const x = await rawSocketPair(a);
    const y = await rawSocketPair(a);
    const outcomeP = pumpOnce(a, x.fd, y.fd);
    assert.throws(() => a.pumpConfigure({ threads: 2 }), /already running/);
    assert.equal(a.pumpStats().running, true);
    x.peer.destroy();
    y.peer.destroy();
    await outcomeP;
  });

  it('copies instead of splicing once the pipe page budget is spent (fresh process, budget 0)', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const script = `
      const { loadNativeAddon } = await import(${JSON.stringify(path.join(here, '..', '..', '..', 'shared', 'native', 'addon.js'))});
      const { rawSocketPair } = await import(${JSON.stringify(path.join(here, '..', '..', 'helpers', 'socket-fds.js'))});
      const a = loadNativeAddon();
      a.pumpConfigure({ pipeBudgetPages: 0 });
      const x = await rawSocketPair(a);
      const y = await rawSocketPair(a);
      const done = new Promise((resolve) => a.pumpStart({ downstreamFd: x.fd, upstreamFd: y.fd }, resolve));
      let got = 0;
      y.peer.on('data', (d) => { got += d.length; });
      y.peer.once('end', () => y.peer.end());
      x.peer.end(Buffer.alloc(1 << 20, 1));
      x.peer.resume();
      const outcome = await done;
      console.log(JSON.stringify({ outcome, got, stats: a.pumpStats() }));
      x.peer.destroy(); y.peer.destroy();`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as {
      outcome: NativePumpOutcome;
      got: number;
      stats: { budgetCopies: number; pipePages: number };
    };
    assert.equal(out.outcome.bytesUp, 1 << 20);
    assert.equal(out.got, 1 << 20);
    assert.equal(out.outcome.copied, true);
    assert.ok(out.stats.budgetCopies > 0);
    assert.equal(out.stats.pipePages, 0);
  });
});
