/**
 * The inner as an enclave's entrypoint, inside the QEMU guest of `npm run test:vsock` (real vsock,
 * root, a clock that may be set): the inner runs as PID 1 of fresh PID and network namespaces
 * (`unshare`), so it starts like in an enclave, with lo down and nobody to reap orphans. Proves:
 * lo brought up (the app reaches the inner's 127.0.0.1 admin endpoint), the kernel RNG seeded
 * through RNDADDENTROPY (NSM simulator), an orphan reaped, SIGHUP forwarded to the app, and the
 * app's exit code reaching the outer. Then the clock: a parent clock 3 s ahead steps the real one.
 * Elsewhere it skips with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ClockSync, MAX_RTT_MS } from '../../../proxy-inner/bootstrap/clock-sync.js';
import { startClockServer } from '../../../proxy-outer/clock/server.js';
import { logger } from '../../../shared/log/logger.js';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import { configureVsock } from '../../../shared/transport/vsock.js';
import { CLI } from '../../helpers/paths.js';
import { freePorts } from '../../helpers/ports.js';
import { runCli, tempDir } from '../../helpers/process.js';
import { vsockLoopbackUnavailable } from '../../helpers/vsock-loopback.js';

const unavailable = await vsockLoopbackUnavailable();
if (unavailable) console.log(`# skipping the enclave bootstrap tests: ${unavailable}`);
const START_MS = 300_000;
const LOOPBACK_CID = 1;

const APP = `
const http = require('node:http');
const { spawn } = require('node:child_process');
process.on('SIGHUP', () => { console.log('app got SIGHUP'); process.exit(42); });
http.get('http://127.0.0.1:' + process.env.INNER_ADMIN + '/live', (res) => {
  console.log('app reached the inner admin on 127.0.0.1: ' + res.statusCode);
  res.resume();
  // Its parent exits at once: the sleep is an orphan for init (the inner) to reap.
  spawn('sh', ['-c', '(sleep 0.3) & exit 0'], { stdio: 'ignore' }).once('exit', () => console.log('app ready'));
}).on('error', (e) => { console.log('app could not reach 127.0.0.1: ' + e.message); process.exit(3); });
setInterval(() => {}, 1000);
`;

describe('the inner as the enclave entrypoint (PID 1, lo down at start)', { skip: unavailable, timeout: 900_000 }, () => {
  const dir = tempDir('vm-boot-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("brings lo up, seeds the RNG, reaps an orphan, forwards SIGHUP, and the app's code reaches the outer", async () => {
    const [innerAdmin] = (await freePorts(1)) as [number];
    const app = path.join(dir, 'app.cjs');
    fs.writeFileSync(app, APP);
    const outerFile = path.join(dir, 'outer.yaml');
    fs.writeFileSync(outerFile, stringify({ role: 'outer', admin: { address: null }, enclave: { cid: LOOPBACK_CID }, listeners: [] }));
    const innerFile = path.join(dir, 'inner.yaml');
    fs.writeFileSync(
      innerFile,
      stringify({
        role: 'inner',
        admin: { address: `tcp://127.0.0.1:${innerAdmin}` },
        vsock: { parent_cid: LOOPBACK_CID },
        bootstrap: { mode: 'on', clock_sync_interval: '0s' },
        nsm: { mode: 'simulator' },
        app: { command: [process.execPath, app], env: { INNER_ADMIN: String(innerAdmin) } },
        listeners: [],
      }),
    );
    // The inner redials the outer's channels, so neither waits for the other to start.
    const outer = runCli(['--config', outerFile]);
    try {
      // PID 1 of new PID, mount and network namespaces: lo starts down, orphans come to us.
      const unshare = spawn(
        'unshare',
        ['--net', '--pid', '--fork', '--mount-proc', process.execPath, CLI, '--config', innerFile, '--log-level', 'debug'],
        { env: { ...process.env, ENCLAVER_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let innerOut = '';
      unshare.stdout.on('data', (d: Buffer) => {
        innerOut += d.toString();
      });
      unshare.stderr.on('data', (d: Buffer) => {
        innerOut += d.toString();
      });
      const forwarded = (msg: string) =>
        outer
          .waitFor((r) => r.side === 'inner' && String(r.msg).includes(msg), START_MS, `"${msg}" from the enclave`)
          .catch((err: Error) => {
            throw new Error(`${err.message}\ninner's own output:\n${innerOut}`);
          });
      const lo = await forwarded('loopback interface lo is up');
      assert.equal(lo.was_down, true);
      const rng = await forwarded('kernel RNG seeded');
      assert.ok(Number(rng.bytes) > 0);
      await forwarded('app reached the inner admin on 127.0.0.1: 200');
      await forwarded('app ready');
      await forwarded('reaped an orphan');
      // The inner as seen from here: the child unshare forked (PID 1 inside its namespace).
      const innerPid = Number(
        execFileSync('pgrep', ['-P', String(unshare.pid)], { encoding: 'utf8' })
          .trim()
          .split('\n')[0],
      );
      process.kill(innerPid, 'SIGHUP');
      await forwarded('app got SIGHUP');
      const { code } = await outer.exited;
      assert.equal(code, 42);
      await new Promise((resolve) => unshare.once('exit', resolve));
    } finally {
      await outer.stop('SIGKILL');
    }
  });

  it('steps the real clock to a parent 3 s ahead (clock_settime through the addon)', async () => {
    configureVsock({ parentCid: LOOPBACK_CID });
    const server = await startClockServer(() => Date.now() + 3000);
    try {
      const addon = loadNativeAddon()!;
      const sync = new ClockSync({
        intervalMs: 60_000,
        maxStepMs: 5000,
        setClock: (ms) => addon.setRealtimeClock(ms),
        log: logger('test'),
      });
      const before = Date.now();
      const r = await sync.syncOnce();
      const after = Date.now();
      assert.ok(r.sample, 'the parent answered');
      if (r.sample.rttMs > MAX_RTT_MS) return;
      assert.ok(Math.abs(r.stepMs - 3000) <= r.sample.rttMs / 2 + 1, `step ${r.stepMs}, rtt ${r.sample.rttMs}`);
      // The wall clock moved by the step: more than the time the sync itself took.
      assert.ok(after - before >= r.stepMs, `clock moved ${after - before} ms`);
    } finally {
      await server.close();
    }
  });
});
