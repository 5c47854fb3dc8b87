/**
 * A pass-through listener (TCP proxy kind) on both accept paths: the native fast path (pump
 * threads accept, dial, PROXY v2, pump; JS hears in batches) and the JS path. Every assertion
 * runs on both, so a client, an upstream, the access log and the metrics cannot tell them apart.
 *
 * No assertion waits for time to pass: each waits for an event (a byte, a close, the drain).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { ClusterConfig, ListenerConfig } from '../../../shared/config/types.js';
import { useFastPath } from '../../../shared/listener/fast-accept.js';
import { Listener } from '../../../shared/listener/listener.js';
import { addLogTap } from '../../../shared/log/logger.js';
import { registry } from '../../../shared/metrics/registry.js';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import { encodeProxyHeader, parseProxyHeader } from '../../../shared/proxy-protocol/v2.js';
import { tcpProxy } from '../../../shared/tcp-proxy/tcp-proxy.js';
import { freePort } from '../../helpers/ports.js';
import { eventually } from '../../helpers/eventually.js';

const addon = loadNativeAddon();

async function metric(series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

/** Connections counted by how their bytes moved, over every path. */
async function pumpedTotal(listener: string): Promise<number> {
  let sum = 0;
  for (const path of ['splice', 'copy', 'js'])
    sum += (await metric(`enclaver_pumped_connections_total{listener="${listener}",path="${path}"}`)) ?? 0;
  return sum;
}

type Record = { [key: string]: unknown };
const lines: Record[] = [];
const removeTap = addLogTap((line) => lines.push(JSON.parse(line) as Record));
after(() => removeTap());

/** An upstream server; `onConnection` decides what it does with each socket. */
async function upstream(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** Reads everything until the peer's FIN, then runs `answer` on it. */
function whenEnded(s: net.Socket, answer: (data: Buffer) => void): void {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.on('end', () => answer(Buffer.concat(parts)));
}

let seq = 0;
interface ProxyListenerOptions {
  expectProxy?: boolean;
  sendProxy?: boolean;
  maxConnections?: number;
  idleTimeoutMs?: number;
  accessLog?: boolean;
}

async function proxyListener(upstreamPort: number, opts: ProxyListenerOptions = {}): Promise<{ l: Listener; port: number; name: string }> {
  const name = `pt-${process.pid}-${++seq}`;
  const cluster: ClusterConfig = {
    name: 'up',
    endpoints: [{ kind: 'tcp', host: '127.0.0.1', port: upstreamPort }],
    connectTimeoutMs: 5000,
    sendProxyProtocol: opts.sendProxy ?? false,
  };
  const listener: ListenerConfig = {
    kind: 'tcp_proxy',
    name,
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    cluster,
    tls: undefined,
    expectProxyProtocol: opts.expectProxy ?? false,
    maxConnections: opts.maxConnections ?? 100,
    idleTimeoutMs: opts.idleTimeoutMs ?? 0,
    accessLog: opts.accessLog ?? true,
  };
  const l = new Listener({
    name,
    address: listener.address,
    maxConnections: listener.maxConnections,
    handler: tcpProxy({ listener, cluster }),
  });
  await l.start();
  return { l, port: (l.address as { port: number }).port, name };
}

/** Sends `data`, half-closes, and collects the answer until the proxy's FIN. */
function exchange(port: number, data: Buffer | string): Promise<{ answer: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => s.end(data));
    let answer = '';
    s.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    s.on('end', () => {
      resolve({ answer, localPort: s.localPort! });
      s.destroy();
    });
    s.on('error', reject);
  });
}

/** Resolves when the socket closes, with what it received. */
function closedWith(s: net.Socket): Promise<string> {
  let got = '';
  s.on('data', (d: Buffer) => {
    got += d.toString();
  });
  s.on('error', () => {});
  return new Promise((resolve) => s.once('close', () => resolve(got)));
}

async function finish(l: Listener, deadlineMs = 10_000): Promise<void> {
  await l.stopAccepting();
  await l.drain(Date.now() + deadlineMs);
}

const ACCESS_LOG_FIELDS = [
  'bytes_in',
  'bytes_out',
  'client',
  'closed_by',
  'component',
  'conn_id',
  'duration_ms',
  'level',
  'listener',
  'msg',
  'pid',
  'time',
  'upstream',
];

for (const mode of ['fast', 'js'] as const) {
  describe(
    `pass-through listener, ${mode === 'fast' ? 'native fast path' : 'JS path'}`,
    { skip: mode === 'fast' && !addon ? 'the native addon is not built on this machine' : false },
    () => {
      test.before(() => useFastPath(mode === 'fast'));
      test.after(() => useFastPath(undefined));

      test('bytes both ways after a half-close; the access log and the metrics say what happened', async () => {
        const up = await upstream((s) => whenEnded(s, (d) => s.end(d.toString().toUpperCase())));
        const { l, port, name } = await proxyListener(up.port);
        assert.equal(l.fastPath, mode === 'fast');
        const { answer, localPort } = await exchange(port, 'hello');
        assert.equal(answer, 'HELLO');
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name);
        assert.ok(rec, 'one access-log line');
        assert.deepEqual(
          Object.keys(rec)
            .filter((k) => k !== 'side')
            .sort(),
          ACCESS_LOG_FIELDS,
        );
        assert.equal(rec.client, `127.0.0.1:${localPort}`);
        assert.equal(rec.upstream, `tcp://127.0.0.1:${up.port}`);
        assert.equal(rec.bytes_in, 5);
        assert.equal(rec.bytes_out, 5);
        assert.equal(rec.closed_by, 'downstream');
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 1);
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="client_to_upstream"}`), 5);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="upstream_to_client"}`), 5);
        assert.equal(await pumpedTotal(name), 1);
        up.server.close();
      });

      test('without an access log, connections are only counted: the metrics still sum every byte', async () => {
        const up = await upstream((s) => whenEnded(s, (d) => s.end(d.toString().repeat(2))));
        const { l, port, name } = await proxyListener(up.port, { accessLog: false });
        const answers = await Promise.all(['a', 'bb', 'ccc'].map((m) => exchange(port, m)));
        assert.deepEqual(
          answers.map((a) => a.answer),
          ['aa', 'bbbb', 'cccccc'],
        );
        await finish(l);
        assert.equal(lines.filter((r) => r.msg === 'connection closed' && r.listener === name).length, 0);
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 3);
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="client_to_upstream"}`), 6);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="upstream_to_client"}`), 12);
        assert.equal(await pumpedTotal(name), 3);
        up.server.close();
      });

      test('PROXY v2 out: the upstream reads the client address first, then only the client bytes', async () => {
        const up = await upstream((s) =>
          whenEnded(s, (d) => {
            const h = parseProxyHeader(d);
            assert.ok(h.done);
            s.end(JSON.stringify({ header: h.value, rest: d.subarray(h.consumed).toString() }));
          }),
        );
        const { l, port, name } = await proxyListener(up.port, { sendProxy: true });
        const { answer, localPort } = await exchange(port, 'abc');
        const got = JSON.parse(answer) as {
          header: { command: string; source: { address: string; port: number }; destination: { port: number } };
          rest: string;
        };
        assert.equal(got.header.command, 'proxy');
        assert.deepEqual(got.header.source, { address: '127.0.0.1', port: localPort });
        assert.equal(got.header.destination.port, port);
        assert.equal(got.rest, 'abc');
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.bytes_in, 3, 'the header we wrote is not client bytes');
        up.server.close();
      });

      for (const [family, source, shown] of [
        ['IPv4', '203.0.113.9', '203.0.113.9:5678'],
        ['IPv6', '2001:db8::1', '[2001:db8::1]:5678'],
      ] as const) {
        test(`PROXY v2 in (${family}): the client address comes from the header, the upstream gets only the bytes after it`, async () => {
          const up = await upstream((s) => whenEnded(s, (d) => s.end(`[${d.toString()}]`)));
          const { l, port, name } = await proxyListener(up.port, { expectProxy: true });
          const header = encodeProxyHeader(
            { address: source, port: 5678 },
            { address: family === 'IPv4' ? '198.51.100.1' : '2001:db8::2', port: 443 },
          );
          const { answer } = await exchange(port, Buffer.concat([header, Buffer.from('payload')]));
          assert.equal(answer, '[payload]');
          await finish(l);
          const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
          assert.equal(rec.client, shown);
          assert.equal(rec.bytes_in, 7);
          up.server.close();
        });
      }

      test('a connection without a PROXY header where one is expected is refused, counted and logged', async () => {
        const up = await upstream((s) => s.destroy());
        const { l, port, name } = await proxyListener(up.port, { expectProxy: true });
        const s = net.connect({ host: '127.0.0.1', port });
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(await closedWith(s), '');
        await finish(l);
        assert.equal(await metric(`enclaver_connections_rejected_total{listener="${name}",reason="proxy_protocol"}`), 1);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.code, 'proxy_header_missing');
        up.server.close();
      });

      test('an upstream that refuses: the client is closed, the error logged and counted', async () => {
        const { l, port, name } = await proxyListener(await freePort());
        assert.equal(await closedWith(net.connect({ host: '127.0.0.1', port })), '');
        await finish(l);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.code, 'connect_econnrefused');
        assert.equal(await metric(`enclaver_errors_total{listener="${name}",code="connect_econnrefused"}`), 1);
      });

      test('max_connections counts a connection until it ends; the one over the limit is closed and counted', async () => {
        let held!: net.Socket;
        let arrived!: () => void;
        const first = new Promise<void>((r) => {
          arrived = r;
        });
        const up = await upstream((s) => {
          held = s;
          arrived();
        });
        const { l, port, name } = await proxyListener(up.port, { maxConnections: 1 });
        const a = net.connect({ host: '127.0.0.1', port });
        a.on('error', () => {});
        await first;
        const b = net.connect({ host: '127.0.0.1', port });
        assert.equal(await closedWith(b), '');
        // Once the listener has stopped, everything it accepted or refused before is counted.
        await l.stopAccepting();
        assert.equal(await metric(`enclaver_connections_rejected_total{listener="${name}",reason="max_connections"}`), 1);
        // The first one still works both ways.
        const echoed = new Promise<string>((r) => a.once('data', (d: Buffer) => r(d.toString())));
        held.on('data', (d: Buffer) => held.write(d));
        a.write('ping');
        assert.equal(await echoed, 'ping');
        a.end();
        held.end();
        await finish(l);
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 1);
        up.server.close();
      });

      test('a client reset reaches the upstream as a reset, and is logged as one', async () => {
        let upstreamError!: (code: string) => void;
        const reset = new Promise<string>((r) => {
          upstreamError = r;
        });
        let gotBytes!: () => void;
        const flowing = new Promise<void>((r) => {
          gotBytes = r;
        });
        const up = await upstream((s) => {
          s.once('data', () => gotBytes());
          s.on('error', (e: NodeJS.ErrnoException) => upstreamError(e.code ?? 'error'));
        });
        const { l, port, name } = await proxyListener(up.port);
        const c = net.connect({ host: '127.0.0.1', port }, () => c.write('x'));
        c.on('error', () => {});
        await flowing;
        c.resetAndDestroy();
        assert.equal(await reset, 'ECONNRESET');
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.error, 'ECONNRESET');
        assert.equal(rec.error_side, 'downstream');
        assert.equal(await metric(`enclaver_errors_total{listener="${name}",code="ECONNRESET"}`), 1);
        up.server.close();
      });

      test('a connection with no traffic for idle_timeout is closed, and logged as such', async () => {
        const up = await upstream(() => {});
        const { l, name } = await proxyListener(up.port, { idleTimeoutMs: 100 });
        const { port } = l.address as { port: number };
        assert.equal(await closedWith(net.connect({ host: '127.0.0.1', port })), '');
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.closed_by, 'idle_timeout');
        up.server.close();
      });

      test('drain: stop accepting, wait for every in-flight connection, abort what is open at the deadline', async () => {
        const upstreams: net.Socket[] = [];
        let twoArrived!: () => void;
        const both = new Promise<void>((r) => {
          twoArrived = r;
        });
        const up = await upstream((s) => {
          upstreams.push(s);
          s.on('end', () => s.end());
          if (upstreams.length === 2) twoArrived();
        });
        const { l, port, name } = await proxyListener(up.port);
        const first = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        const second = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        const firstClosed = closedWith(first);
        const secondClosed = closedWith(second);
        await both;
        await l.stopAccepting();
        const refused = await new Promise<boolean>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.once('error', () => resolve(true));
          s.once('connect', () => {
            s.destroy();
            resolve(false);
          });
        });
        assert.ok(refused, 'no new connection after stopAccepting');
        let drained = false;
        const draining = l.drain(Date.now() + 600_000).then(() => {
          drained = true;
        });
        first.end();
        await firstClosed;
        await eventually('the connection counted by the pump threads', () => l.activeConnections === 1);
        assert.equal(drained, false, 'the drain still waits for the second connection');
        second.end();
        await secondClosed;
        await draining;
        assert.equal(l.activeConnections, 0);

        // A connection still open when the deadline has passed is aborted, and reported as such.
        const { l: l2, port: port2, name: name2 } = await proxyListener(up.port);
        const stuck = net.connect({ host: '127.0.0.1', port: port2 });
        const stuckClosed = closedWith(stuck);
        const arrived = new Promise<void>((r) => up.server.once('connection', () => r()));
        await arrived;
        while (l2.activeConnections === 0) await new Promise((r) => setImmediate(r));
        await l2.stopAccepting();
        await l2.drain(Date.now());
        await stuckClosed;
        assert.equal(l2.activeConnections, 0);
        const aborted = lines.find((r) => r.msg === 'connection closed' && r.listener === name2)!;
        assert.equal(aborted.closed_by, 'aborted');
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(await metric(`enclaver_connections_active{listener="${name2}"}`), 0);
        up.server.close();
      });
    },
  );
}
