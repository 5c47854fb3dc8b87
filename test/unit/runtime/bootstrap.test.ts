/**
 * The enclave bootstrap's pieces on this machine: when it runs, bringing lo up from down (in a
 * fresh network namespace made by unshare, as root), reaping orphans without taking the exit
 * status of a child Node waits for, forwarding SIGHUP to the app's process group, and the clock
 * sync's arithmetic against a parent clock served over emulated vsock (the step is captured, not
 * applied: this machine's clock is not ours to set; the real step runs in the QEMU guest).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrapDecision } from '../../../proxy-inner/bootstrap/bootstrap.js';
import { ClockSync, MAX_RTT_MS, plannedStep, TOLERANCE_MS } from '../../../proxy-inner/bootstrap/clock-sync.js';
import { startInitDuties, zombieChildren, type InitDuties } from '../../../proxy-inner/bootstrap/init-duties.js';
import { startClockServer } from '../../../proxy-outer/clock/server.js';
import { logger } from '../../../shared/log/logger.js';
import { clockSkewHint, recordClockOffset } from '../../../shared/util/clock-skew.js';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import type { Listening } from '../../../shared/transport/index.js';
import { configureVsock, vsockSettings } from '../../../shared/transport/vsock.js';
import { ROOT } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/process.js';
import { eventually } from '../../helpers/eventually.js';

const addon = loadNativeAddon();
const noAddon = addon ? false : 'native addon unavailable (the bootstrap needs its system calls)';
const unshareProbe = spawnSync('unshare', ['--net', 'true']);
const noNetns =
  process.getuid?.() !== 0
    ? 'not root: cannot make a network namespace'
    : unshareProbe.error || unshareProbe.status !== 0
      ? `unshare --net does not work here (${unshareProbe.error?.message ?? unshareProbe.stderr.toString().trim()})`
      : false;
if (noNetns) console.log(`# skipping the lo test: ${noNetns}`);

describe('bootstrap: when it runs', () => {
  it('mode on/off decides; auto runs as PID 1 or beside /dev/nsm, and ENCLAVER_BOOTSTRAP decides for auto', () => {
    assert.deepEqual(bootstrapDecision('on', {}, 4242, false).run, true);
    assert.deepEqual(bootstrapDecision('off', {}, 1, true).run, false);
    assert.equal(bootstrapDecision('auto', {}, 1, false).run, true);
    assert.equal(bootstrapDecision('auto', {}, 4242, true).run, true);
    assert.equal(bootstrapDecision('auto', {}, 4242, false).run, false);
    assert.equal(bootstrapDecision('auto', { ENCLAVER_BOOTSTRAP: 'on' }, 4242, false).run, true);
    assert.equal(bootstrapDecision('auto', { ENCLAVER_BOOTSTRAP: 'off' }, 1, true).run, false);
  });
});

describe('bootstrap: lo up from down', { skip: noAddon || noNetns }, () => {
  it('a fresh network namespace starts with lo down; the addon brings it up and 127.0.0.1 answers', () => {
    const addonPath = addon!.path;
    // Inside the namespace: report lo before, bring it up, report after, then listen and connect on 127.0.0.1.
    const script = `
      const a = require(${JSON.stringify(addonPath)});
      const net = require('node:net');
      const before = a.interfaceIsUp('lo');
      const wasDown = a.interfaceUp('lo');
      const after = a.interfaceIsUp('lo');
      const s = net.createServer((c) => c.end('pong')).listen(0, '127.0.0.1', () => {
        net.connect(s.address().port, '127.0.0.1').on('data', (d) => { console.log(JSON.stringify({ before, wasDown, after, reply: String(d) })); process.exit(0); });
      });`;
    const r = spawnSync('unshare', ['--net', process.execPath, '-e', script], { encoding: 'utf8', cwd: ROOT });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { before: false, wasDown: true, after: true, reply: 'pong' });
  });
});

describe('bootstrap: init duties (orphans, signals)', { skip: noAddon }, () => {
  let duties: InitDuties;
  const dir = tempDir('init-duties-');
  before(() => {
    duties = startInitDuties(logger('test'), { isPid1: false });
  });
  after(() => {
    duties.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reaps an orphan re-parented to us, and leaves the exit of a child Node spawned to Node', async () => {
    const pidFile = path.join(dir, 'orphan.pid');
    // sh exits at once; its background job lives on, orphaned, and becomes our child (we are a subreaper).
    const sh = spawn('sh', ['-c', `(sleep 0.2; exit 3) & echo $! > ${pidFile}; exit 5`]);
    duties.protect(sh.pid!);
    const [code] = await new Promise<[number | null]>((resolve) => sh.once('exit', (c) => resolve([c])));
    assert.equal(code, 5, "Node got its own child's exit status");
    const orphan = Number(fs.readFileSync(pidFile, 'utf8').trim());
    await eventually(
      'the orphan to be reaped',
      () => {
        duties.sweep();
        return !fs.existsSync(`/proc/${orphan}`);
      },
      30_000,
    );
    assert.ok(duties.reaped() >= 1);
    assert.ok(!zombieChildren().includes(orphan));
  });

  it("forwards SIGHUP to the app's process group", async () => {
    const mark = path.join(dir, 'hup');
    const ready = path.join(dir, 'ready');
    const app = spawn('sh', ['-c', `trap 'echo hup > ${mark}; exit 0' HUP; echo > ${ready}; while :; do sleep 0.05; done`], {
      detached: true,
      stdio: 'ignore',
    });
    duties.protect(app.pid!);
    duties.forwardTo(app.pid!);
    await eventually('the app to set its trap', () => fs.existsSync(ready), 30_000);
    process.kill(process.pid, 'SIGHUP');
    const [code] = await new Promise<[number | null]>((resolve) => app.once('exit', (c) => resolve([c])));
    assert.equal(code, 0);
    assert.equal(fs.readFileSync(mark, 'utf8').trim(), 'hup');
  });
});

describe('clock skew in error messages', () => {
  it('a certificate that failed on time (even as the cause of another error) says what the clock reads and the last offset', () => {
    const tlsFailure = Object.assign(new Error('fetch failed'), {
      cause: Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }),
    });
    const at = new Date('2026-11-30T12:00:00.000Z');
    recordClockOffset(-4321);
    assert.equal(
      clockSkewHint(tlsFailure, at),
      " (this failed on time: this clock reads 2026-11-30T12:00:00.000Z, the parent's clock was -4321 ms " +
        'from this one at the last sync; a skewed clock makes valid certificates look expired or not yet valid: see bootstrap.clock_sync_interval)',
    );
    assert.match(clockSkewHint({ code: 'not_yet_valid' }, at), /this failed on time/);
    assert.equal(clockSkewHint(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), at), '');
  });
});

describe("bootstrap: clock sync against the parent's clock channel (emulated vsock)", () => {
  const dir = tempDir('clock-');
  const saved = { ...vsockSettings() };
  let skewMs = 0;
  let server: Listening;
  before(async () => {
    configureVsock({ emulationDir: dir, localCid: 3, parentCid: 3 });
    server = await startClockServer(() => Date.now() + skewMs);
  });
  after(async () => {
    await server.close();
    configureVsock(saved);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('plans no step within the tolerance, a full step below the bound, a clamped one above it', () => {
    assert.equal(plannedStep({ offsetMs: TOLERANCE_MS, rttMs: 1 }, 5000), null);
    assert.deepEqual(plannedStep({ offsetMs: -1200, rttMs: 1 }, 5000), { stepMs: -1200, clamped: false });
    assert.deepEqual(plannedStep({ offsetMs: 60_000, rttMs: 1 }, 5000), { stepMs: 5000, clamped: true });
    assert.equal(plannedStep({ offsetMs: 60_000, rttMs: 10_000 }, 5000), null, 'a slow round trip is no measurement');
  });

  it("steps forward by the parent's lead (within half a round trip), and never past the bound", async () => {
    const set: number[] = [];
    const sync = new ClockSync({ intervalMs: 60_000, maxStepMs: 5000, setClock: (ms) => set.push(ms - Date.now()), log: logger('test') });
    // The parent's time is read between our two readings, so the estimate is off by at most half the round trip.
    const expectStep = (r: { stepMs: number; sample?: { rttMs: number } }, lead: number, bound: number) => {
      assert.ok(r.sample, 'the parent answered');
      if (r.sample.rttMs > MAX_RTT_MS) return assert.equal(r.stepMs, 0, 'a slow round trip is no measurement');
      const wanted = Math.min(lead, bound);
      assert.ok(Math.abs(r.stepMs - wanted) <= r.sample.rttMs / 2 + 1 || r.stepMs === bound, `step ${r.stepMs}, rtt ${r.sample.rttMs}`);
    };
    skewMs = 2000;
    expectStep(await sync.syncOnce(), 2000, 5000);
    skewMs = 3_600_000;
    expectStep(await sync.syncOnce(), 3_600_000, 5000);
    skewMs = 0;
    const still = await sync.syncOnce();
    assert.ok(still.sample && (still.stepMs === 0 || Math.abs(still.stepMs) <= still.sample.rttMs / 2 + 1), `step ${still.stepMs}`);
    assert.ok(
      set.every((s) => Math.abs(s) <= 5000 + 5),
      `every step within the bound: ${set.join(', ')}`,
    );
  });
});
