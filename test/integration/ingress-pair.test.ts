/**
 * The ingress path end to end through the real CLI: client → outer (TCP) → emulated vsock →
 * inner → app, with the app started and supervised by the inner proxy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { transfer } from '../helpers/hash-client.js';
import { metricValue, startPair, type Pair } from '../helpers/pair.js';
import { FIXTURES, ROOT } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir } from '../helpers/process.js';
import { eventually } from '../helpers/eventually.js';

const exec = promisify(execFile);
const HASH_APP = path.join(FIXTURES, 'apps/hash-app.mjs');
const LATE_APP = path.join(FIXTURES, 'apps/late-listen-app.mjs');
const MiB = 1024 * 1024;

/**
 * Every ingress assertion runs on both accept paths: the native fast path (the default where the
 * addon is built) and the JS path (ENCLAVER_FASTPATH=0). Clients and logs must not tell them apart.
 */
const ACCEPT_PATHS = [
  { name: 'native fast path', env: { ENCLAVER_FASTPATH: '1' }, fast: true },
  { name: 'JS accept path', env: { ENCLAVER_FASTPATH: '0' }, fast: false },
] as const;
const ADDON_BUILT = fs.existsSync(path.join(ROOT, 'native', 'build', 'Release', 'enclaver_native.node'));

for (const accept of ACCEPT_PATHS) {
  const skip = accept.fast && !ADDON_BUILT ? 'the native addon is not built on this machine' : false;

  describe(`ingress through the local pair (hash app, ${accept.name})`, { skip }, () => {
    let pair: Pair;
    before(async () => {
      pair = await startPair({
        env: accept.env,
        app: [process.execPath, HASH_APP],
        readyLine: /hash-app listening/,
        // A second ingress whose enclave side does not exist: the "vsock peer is gone" case.
        outerListenerExtra: '    - { name: nowhere, address: "tcp://127.0.0.1:0", cluster: nowhere }',
        outerExtra: '    - { name: nowhere, endpoints: ["vsock://16:29999"], connect_timeout: 1s }',
      });
    });
    after(async () => {
      await pair?.stop();
    });

    test('both sides accept on the path under test', () => {
      const listening = pair.proc.records().filter((r) => r.msg === 'listening' && r.listener === 'web');
      assert.equal(listening.length, 2);
      for (const r of listening) assert.equal(r.fast_path === true, accept.fast, `${String(r.side)} accepts on the ${accept.name}`);
    });

    test('256 MiB each way arrive intact (SHA-256 checked at both ends)', async () => {
      const r = await transfer(pair.ingressPort, { up: 256 * MiB, down: 256 * MiB, seed: 7n });
      assert.equal(r.bytesReceived, 256 * MiB + 32);
      assert.ok(r.upIntact, 'the app saw exactly what the client sent');
      assert.ok(r.downIntact, 'the client saw exactly what the app sent');
    });

    test('a client that half-closes still gets the whole response', async () => {
      // The app answers its digest only after the client's FIN has crossed both proxies.
      const r = await transfer(pair.ingressPort, { up: 3 * MiB + 17, down: 5 * MiB + 3, seed: 11n });
      assert.ok(r.upIntact);
      assert.ok(r.downIntact);
    });

    test('zero bytes each way', async () => {
      const r = await transfer(pair.ingressPort, { up: 0, down: 0, seed: 13n });
      assert.ok(r.upIntact && r.downIntact);
    });

    test('1,000 concurrent connections are all answered', async () => {
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => transfer(pair.ingressPort, { up: 1000 + i, down: 2000 + i, seed: BigInt(100 + i) })),
      );
      assert.equal(results.filter((r) => r.upIntact && r.downIntact).length, 1000);
      await eventually(
        'outer active connections back to 0',
        async () => metricValue(await pair.metrics('outer'), 'enclaver_connections_active{listener="web"}') === 0,
      );
      await eventually(
        'inner active connections back to 0',
        async () => metricValue(await pair.metrics('inner'), 'enclaver_connections_active{listener="web"}') === 0,
      );
    });

    test('a client reset mid-stream closes only its own connection', async () => {
      const bystander = transfer(pair.ingressPort, { up: 8 * MiB, down: 8 * MiB, seed: 21n, chunk: 64 * 1024, paceMs: 2 });
      const victim = net.connect({ host: '127.0.0.1', port: pair.ingressPort });
      await new Promise<void>((resolve) => victim.once('connect', () => resolve()));
      const victimPort = victim.localPort;
      const header = Buffer.alloc(16);
      header.writeBigUInt64BE(BigInt(64 * MiB), 0);
      victim.write(header);
      victim.write(Buffer.alloc(MiB));
      await new Promise<void>((resolve) => victim.once('data', () => resolve()));
      victim.resetAndDestroy();
      const r = await bystander;
      assert.ok(r.upIntact && r.downIntact, 'the other connection is untouched');
      // The inner side logged the reset connection, with the real client address from PROXY v2.
      const rec = await pair.proc.waitFor(
        (x) => x.msg === 'connection closed' && x.side === 'inner' && typeof x.error === 'string',
        10_000,
        'inner log of the reset connection',
      );
      assert.equal(rec.error_side, 'downstream');
      assert.match(String(rec.client), new RegExp(`^127\\.0\\.0\\.1:${victimPort}$`));
      assert.deepEqual(
        Object.keys(rec).sort(),
        [
          'bytes_in',
          'bytes_out',
          'client',
          'closed_by',
          'component',
          'conn_id',
          'duration_ms',
          'error',
          'error_side',
          'level',
          'listener',
          'msg',
          'pid',
          'side',
          'time',
          'upstream',
        ],
        'the access-log line has the same fields on either path',
      );
      // And the pair still serves.
      const again = await transfer(pair.ingressPort, { up: 10, down: 10, seed: 23n });
      assert.ok(again.upIntact && again.downIntact);
    });

    test('a vsock peer that is gone: the client is closed, the error logged, other listeners unaffected', async () => {
      const rec = pair.proc.records().find((r) => r.msg === 'listening' && r.listener === 'nowhere');
      const port = Number(String(rec?.address).split(':').pop());
      const got = await new Promise<{ bytes: number; error?: string }>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let bytes = 0;
        s.on('data', (d: Buffer) => {
          bytes += d.length;
        });
        s.on('error', (e) => resolve({ bytes, error: e.message }));
        s.on('close', () => resolve({ bytes }));
      });
      assert.equal(got.bytes, 0);
      const warn = await pair.proc.waitFor((r) => r.msg === 'connection not proxied' && r.listener === 'nowhere');
      assert.equal(warn.reason, 'cannot reach cluster nowhere');
      assert.match(String(warn.error), /connect vsock:\/\/16:29999: no peer is listening on this vsock port/);
      const r = await transfer(pair.ingressPort, { up: 100, down: 100, seed: 41n });
      assert.ok(r.upIntact && r.downIntact);
      assert.equal(metricValue(await pair.metrics('outer'), 'enclaver_errors_total{listener="nowhere",code="connect_econnreset"}'), 1);
    });

    test('metrics count connections and bytes per listener', async () => {
      const text = await pair.metrics('outer');
      assert.ok((metricValue(text, 'enclaver_connections_total{listener="web"}') ?? 0) >= 1000);
      assert.ok((metricValue(text, 'enclaver_bytes_total{listener="web",direction="client_to_upstream"}') ?? 0) >= 256 * MiB);
      assert.ok((metricValue(text, 'enclaver_bytes_total{listener="web",direction="upstream_to_client"}') ?? 0) >= 256 * MiB);
    });
  });

  describe(`curl through the local pair (${accept.name})`, { skip }, () => {
    test('curl gets the demo app answer, and the inner logs the real client', async () => {
      const pair = await startPair({
        env: accept.env,
        app: [process.execPath, path.join(ROOT, 'configs/demo/app.mjs')],
        readyLine: /demo app listening/,
      });
      try {
        const { stdout } = await exec('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${pair.ingressPort}/hello?x=1`]);
        const body = JSON.parse(stdout) as { message: string; path: string };
        assert.equal(body.message, 'Hello from inside the enclave');
        assert.equal(body.path, '/hello?x=1');
        const rec = await pair.proc.waitFor((r) => r.msg === 'connection closed' && r.side === 'inner');
        assert.match(String(rec.client), /^127\.0\.0\.1:\d+$/);
        assert.notEqual(String(rec.client), `127.0.0.1:${pair.ingressPort}`);
      } finally {
        const r = await pair.stop('SIGINT');
        assert.equal(r.code, 0, "Ctrl-C stops the pair cleanly with the app's exit code");
      }
    });
  });

  describe(`PROXY protocol v2 on the app leg (optional, ${accept.name})`, { skip }, () => {
    test("the app receives the real client address, then the client's bytes", async () => {
      const pair = await startPair({
        env: accept.env,
        app: [process.execPath, path.join(FIXTURES, 'apps/proxy-v2-app.mjs')],
        appProxyProtocol: true,
        readyLine: /proxy-v2-app listening/,
      });
      try {
        const answer = await new Promise<string>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port: pair.ingressPort, allowHalfOpen: true }, () => s.end('hello'));
          let out = '';
          s.on('data', (d: Buffer) => {
            out += d.toString();
          });
          s.on('end', () => resolve(out));
          s.on('error', reject);
        });
        const body = JSON.parse(answer) as { command: number; family: number; source: { address: string; port: number }; after: string };
        assert.equal(body.command, 1, 'PROXY command, not LOCAL');
        assert.equal(body.family, 0x11);
        assert.equal(body.source.address, '127.0.0.1');
        assert.notEqual(body.source.port, pair.ingressPort);
        assert.equal(body.after, 'hello');
      } finally {
        await pair.stop();
      }
    });
  });

  describe(`an app that is not listening yet (${accept.name})`, { skip }, () => {
    test('a client that arrives before the app listens is held and served once it does; /ready follows the app', async () => {
      const pair = await startPair({
        env: accept.env,
        app: [process.execPath, LATE_APP],
        readyLine: /late-listen-app waiting/,
        appClusterExtra: '      connect_timeout: 120s',
      });
      try {
        const ready = async (side: 'inner' | 'outer') =>
          (await fetch(`http://127.0.0.1:${side === 'inner' ? pair.innerAdmin : pair.outerAdmin}/ready`)).status;
        assert.equal(await ready('inner'), 503, 'the inner is not ready while the app does not accept');
        assert.equal(await ready('outer'), 503, 'nor is the outer');
        const appPid = Number(/late-listen-app waiting pid=(\d+)/.exec(pair.proc.stdout())![1]);
        const answer = await new Promise<string>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port: pair.ingressPort, allowHalfOpen: true }, () => {
            s.end('early');
            process.kill(appPid, 'SIGUSR2'); // now the app binds its port
          });
          let out = '';
          s.on('data', (d: Buffer) => {
            out += d.toString();
          });
          s.on('end', () => resolve(out));
          s.on('error', reject);
        });
        assert.equal(answer, 'EARLY');
        await eventually('inner /ready once the app accepts', async () => (await ready('inner')) === 200);
        await eventually('outer /ready once the app accepts', async () => (await ready('outer')) === 200);
        // The app starting to accept is the outer's status line; readiness is said once.
        await pair.proc.waitFor(
          (r) => r.msg === 'enclave running' && (r.enclave_status as { accepting?: boolean }).accepting === true,
          60_000,
          'the status line of the app accepting',
        );
        assert.equal(pair.proc.records().filter((r) => r.msg === 'local pair ready').length, 1, 'ready is said once');
      } finally {
        await pair.stop();
      }
    });
  });

  describe(`drain (${accept.name})`, { skip }, () => {
    test('SIGTERM drains in-flight connections before stopping the app', async () => {
      const pair = await startPair({
        env: accept.env,
        app: [process.execPath, HASH_APP],
        appEnv: { STOP_CODE: '5' },
        readyLine: /hash-app listening/,
      });
      let connected!: () => void;
      const isConnected = new Promise<void>((r) => {
        connected = r;
      });
      // A transfer paced to last well over a second, started before the signal.
      const slow = transfer(pair.ingressPort, {
        up: 2 * MiB,
        down: MiB,
        seed: 31n,
        chunk: 64 * 1024,
        paceMs: 40,
        onConnected: () => connected(),
      });
      await isConnected;
      await new Promise((r) => setTimeout(r, 200));
      const stopping = pair.stop('SIGTERM');
      // New connections are refused once the listener closed…
      await eventually(
        'ingress refusing new connections',
        () =>
          new Promise<boolean>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port: pair.ingressPort });
            s.once('error', () => resolve(true));
            s.once('connect', () => {
              s.destroy();
              resolve(false);
            });
          }),
      );
      // …while the one in flight completes intact.
      const r = await slow;
      assert.ok(r.upIntact && r.downIntact, 'the in-flight transfer completed during drain');
      const exit = await stopping;
      assert.equal(exit.code, 5, "exit code is the app's (it exits 5 on SIGTERM)");
      assert.equal(
        fs.existsSync(path.join(pair.dir, 'run', 'vsock', `16_${20000 + (pair.appPort % 10000)}.sock`)),
        false,
        'emulated vsock sockets are removed',
      );
    });
  });
}

describe('app supervision', () => {
  test("the app gets the egress proxy environment (both spellings) and none of the proxy's own settings", async () => {
    const pair = await startPair({
      app: [process.execPath, path.join(FIXTURES, 'apps/env-app.mjs')],
      appEnv: { DEMO_SETTING: 'from-config' },
      innerListenerExtra: '    - { name: egress, address: "tcp://127.0.0.1:0", egress: { allow: ["example.com:443"] } }',
      readyLine: /env-app listening/,
      env: { ENCLAVER_SOMETHING: 'secret-to-the-proxy', http_proxy: 'http://outer-machine-proxy:3128' },
    });
    try {
      const env = JSON.parse(
        await new Promise<string>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port: pair.ingressPort });
          let out = '';
          s.on('data', (d: Buffer) => {
            out += d.toString();
          });
          s.on('end', () => resolve(out));
          s.on('error', reject);
        }),
      ) as Record<string, string>;
      const bound = pair.proc.records().find((r) => r.msg === 'listening' && r.listener === 'egress' && r.side === 'inner');
      const hostPort = String(bound?.address).replace('tcp://', '');
      assert.equal(env.HTTP_PROXY, `http://${hostPort}`);
      assert.equal(env.HTTPS_PROXY, `http://${hostPort}`);
      assert.equal(env.http_proxy, `http://${hostPort}`, 'the egress proxy replaces whatever proxy the machine had');
      assert.equal(env.https_proxy, `http://${hostPort}`);
      assert.equal(env.ALL_PROXY, `socks5h://${hostPort}`, 'ALL_PROXY is SOCKS5 with remote name resolution');
      assert.equal(env.all_proxy, `socks5h://${hostPort}`);
      assert.equal(env.NO_PROXY, 'localhost,127.0.0.1,::1');
      assert.equal(env.no_proxy, 'localhost,127.0.0.1,::1');
      assert.equal(env.DEMO_SETTING, 'from-config');
      assert.equal(
        Object.keys(env).some((k) => k.startsWith('ENCLAVER_')),
        false,
        'no ENCLAVER_* variable leaks to the app',
      );
    } finally {
      await pair.stop();
    }
  });

  test("the app's exit code is the pair's exit code, even when it exits at once", async () => {
    const quick = await runPairToExit({ EXIT_CODE: '3' });
    assert.equal(quick.code, 3);
    const rec = quick.records.find((r) => String(r.msg).startsWith('app exited'));
    assert.ok(rec, 'the inner says the app exited');
    assert.equal(rec.code, 3);
    // Whether it was "right after starting" is the app's run time (under 1 s), which a loaded machine decides.
    assert.equal(rec.msg, Number(rec.ran_ms) < 1000 ? 'app exited right after starting' : 'app exited');
  });

  test('a missing app binary is a precise error and exit code 127, before the app side listens', async () => {
    const missing = await runPairToExit({}, ['/nonexistent/bin/app', '--flag']);
    assert.equal(missing.code, 127);
    const rec = missing.records.find((r) => r.msg === 'app could not be started');
    assert.match(String(rec?.err), /app command "\/nonexistent\/bin\/app" not found/);
    assert.equal(
      missing.records.some((r) => r.side === 'inner' && r.msg === 'listening'),
      false,
      'the inner opened no listener',
    );
  });
});

/** A pair whose app ends by itself: returns the pair's exit code and its log records. */
async function runPairToExit(
  appEnv: Record<string, string>,
  app = [process.execPath, HASH_APP],
): Promise<{ code: number | null; records: Record<string, unknown>[] }> {
  const [a, b, c, d] = await freePorts(4);
  const dir = tempDir();
  const file = path.join(dir, 'exit.yaml');
  fs.writeFileSync(
    file,
    `role: local
outer:
  admin: { address: tcp://127.0.0.1:${a} }
  listeners: [{ name: web, address: tcp://127.0.0.1:${b}, cluster: e }]
  clusters: [{ name: e, endpoints: [vsock://16:${(c! % 1000) + 30000}], proxy_protocol: v2 }]
inner:
  admin: { address: tcp://127.0.0.1:${d} }
  app: { command: ${JSON.stringify(app)}, env: ${JSON.stringify(appEnv)} }
`,
  );
  const p = runCli(['--config', file]);
  const { code } = await p.exited;
  fs.rmSync(dir, { recursive: true, force: true });
  return { code, records: p.records() };
}
