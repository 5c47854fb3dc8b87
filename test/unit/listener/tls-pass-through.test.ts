/**
 * A TLS-terminating pass-through listener (tcp_proxy with `tls`) on both accept paths: the native
 * fast path (the pump threads do the handshake with Node's OpenSSL and move the plaintext) and
 * the JS path (TLSSocket). Every assertion runs on both: clients, upstreams, the access log and
 * the metrics cannot tell them apart (except the pump path label: copy vs js).
 *
 * No assertion waits for time to pass: each waits for an event (a byte, a close, a log line).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, describe, test } from 'node:test';
import type { ClusterConfig, ListenerConfig } from '../../../shared/config/types.js';
import { useFastPath } from '../../../shared/listener/fast-accept.js';
import { Listener } from '../../../shared/listener/listener.js';
import { addLogTap } from '../../../shared/log/logger.js';
import { registry } from '../../../shared/metrics/registry.js';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import { encodeProxyHeader } from '../../../shared/proxy-protocol/v2.js';
import { tcpProxy } from '../../../shared/tcp-proxy/tcp-proxy.js';
import { pemSecureContext, type TlsContextSource } from '../../../shared/tls/identity.js';
import { eventually } from '../../helpers/eventually.js';
import { pseudoRandom } from '../../helpers/hash-client.js';
import { freePort } from '../../helpers/ports.js';
import { selfSignedLoopbackCertificate, type TestCertificate } from '../../helpers/tls.js';

const addon = loadNativeAddon();
const certA = selfSignedLoopbackCertificate();
const certB = selfSignedLoopbackCertificate();

async function metric(series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

type Record = { [key: string]: unknown };
const lines: Record[] = [];
const removeTap = addLogTap((line) => lines.push(JSON.parse(line) as Record));
after(() => removeTap());

async function upstream(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server; connections: () => number }> {
  let count = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    count++;
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, server, connections: () => count };
}

/** A context source whose identity a test can swap, as an attested certificate's re-issue does. */
function swappable(first: TestCertificate): { source: TlsContextSource; swap: (c: TestCertificate) => void } {
  let current = pemSecureContext({ certificate: first.cert, key: first.key });
  const listeners: (() => void)[] = [];
  const source: TlsContextSource = Object.assign(() => Promise.resolve(current), { onChange: (l: () => void) => void listeners.push(l) });
  return {
    source,
    swap: (c) => {
      current = pemSecureContext({ certificate: c.cert, key: c.key });
      for (const l of listeners) l();
    },
  };
}

let seq = 0;
interface Options {
  expectProxy?: boolean;
  sendProxy?: boolean;
  handshakeTimeoutMs?: number;
  source?: TlsContextSource;
  idleTimeoutMs?: number;
}

async function tlsListener(upstreamPort: number, opts: Options = {}): Promise<{ l: Listener; port: number; name: string }> {
  const name = `tls-${process.pid}-${++seq}`;
  const cluster: ClusterConfig = {
    name: 'app',
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
    maxConnections: 100,
    idleTimeoutMs: opts.idleTimeoutMs ?? 0,
    accessLog: true,
  };
  const source = opts.source ?? swappable(certA).source;
  const l = new Listener({
    name,
    address: listener.address,
    maxConnections: listener.maxConnections,
    handler: tcpProxy({
      listener,
      cluster,
      tls: source,
      ...(opts.handshakeTimeoutMs ? { tlsHandshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
    }),
  });
  await l.start();
  // The identity loads asynchronously: until it has, the fast path hands connections to JS.
  if (l.fastPath) await eventually('the fast path to load the TLS identity', () => l.fastPathTlsIdentities > 0);
  return { l, port: (l.address as { port: number }).port, name };
}

/** Node's TLSSocket honours allowHalfOpen; its option type does not list it. */
const halfOpen = { allowHalfOpen: true } as tls.ConnectionOptions;

function tlsConnect(port: number, extra: tls.ConnectionOptions = {}): tls.TLSSocket {
  const s = tls.connect({ host: '127.0.0.1', port, ca: [certA.cert, certB.cert], servername: 'localhost', ...halfOpen, ...extra });
  s.on('error', () => {});
  return s;
}

/** Everything until the peer's end (close_notify or FIN). */
function readAll(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

async function finish(l: Listener): Promise<void> {
  await l.stopAccepting();
  await l.drain(Date.now() + 10_000);
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

for (const mode of ['fast', 'js'] as const) {
  describe(
    `TLS pass-through listener, ${mode === 'fast' ? 'native TLS on the fast path' : 'JS path'}`,
    { skip: mode === 'fast' && !addon ? 'the native addon is not built on this machine' : false },
    () => {
      test.before(() => useFastPath(mode === 'fast'));
      test.after(() => useFastPath(undefined));

      test('client half-close first: its bytes reach the upstream, the answer comes back; log and metrics agree', async () => {
        const up = await upstream((s) => void readAll(s).then((d) => s.end(d.toString().toUpperCase())));
        const { l, port, name } = await tlsListener(up.port);
        assert.equal(l.fastPath, mode === 'fast');
        const c = tlsConnect(port);
        await new Promise((r) => c.once('secureConnect', r));
        const localPort = c.localPort;
        const answer = readAll(c);
        c.end('hello tls');
        assert.equal((await answer).toString(), 'HELLO TLS');
        await closed(c);
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name);
        assert.ok(rec, 'one access-log line');
        assert.equal(rec.client, `127.0.0.1:${localPort}`);
        assert.equal(rec.upstream, `tcp://127.0.0.1:${up.port}`);
        assert.equal(rec.bytes_in, 9);
        assert.equal(rec.bytes_out, 9);
        assert.equal(rec.closed_by, 'downstream');
        assert.equal(rec.error, undefined);
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 1);
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="client_to_upstream"}`), 9);
        assert.equal(await metric(`enclaver_bytes_total{listener="${name}",direction="upstream_to_client"}`), 9);
        const path = mode === 'fast' ? 'copy' : 'js';
        assert.equal(await metric(`enclaver_pumped_connections_total{listener="${name}",path="${path}"}`), 1);
        up.server.close();
      });

      test('upstream half-close first: the client gets the end (close_notify), and can still send', async () => {
        let upstreamGot!: Promise<Buffer>;
        const up = await upstream((s) => {
          upstreamGot = readAll(s);
          s.end('bye first');
        });
        const { l, port, name } = await tlsListener(up.port);
        const c = tlsConnect(port);
        const got = await readAll(c);
        assert.equal(got.toString(), 'bye first');
        c.end('still talking');
        assert.equal((await upstreamGot).toString(), 'still talking');
        await closed(c);
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.closed_by, 'upstream');
        assert.equal(rec.bytes_in, 13);
        assert.equal(rec.bytes_out, 9);
        up.server.close();
      });

      test('256 MiB each way, SHA-256 checked at both ends', async () => {
        const size = 256 * 1024 * 1024;
        const chunk = 256 * 1024;
        let upstreamHash!: Promise<string>;
        const up = await upstream((s) => {
          const h = crypto.createHash('sha256');
          s.on('data', (d: Buffer) => h.update(d));
          upstreamHash = new Promise((r) => s.once('end', () => r(h.digest('hex'))));
          const gen = pseudoRandom(7n);
          let sent = 0;
          const pump = (): void => {
            while (sent < size) {
              const piece = gen.update(Buffer.alloc(Math.min(chunk, size - sent)));
              sent += piece.length;
              if (!s.write(piece)) return void s.once('drain', pump);
            }
            s.end();
          };
          pump();
        });
        const { l, port } = await tlsListener(up.port);
        const c = tlsConnect(port);
        const gotHash = crypto.createHash('sha256');
        c.on('data', (d: Buffer) => gotHash.update(d));
        const downDone = new Promise<void>((r) => c.once('end', () => r()));
        const expectDown = crypto.createHash('sha256');
        const expectUp = crypto.createHash('sha256');
        const genDown = pseudoRandom(7n);
        for (let i = 0; i < size; i += chunk) expectDown.update(genDown.update(Buffer.alloc(chunk)));
        const genUp = pseudoRandom(8n);
        let sent = 0;
        await new Promise<void>((resolve) => {
          const pump = (): void => {
            while (sent < size) {
              const piece = genUp.update(Buffer.alloc(chunk));
              expectUp.update(piece);
              sent += piece.length;
              if (!c.write(piece)) return void c.once('drain', pump);
            }
            c.end();
            resolve();
          };
          c.once('secureConnect', pump);
        });
        await downDone;
        assert.equal(gotHash.digest('hex'), expectDown.digest('hex'));
        assert.equal(await upstreamHash, expectUp.digest('hex'));
        await closed(c);
        await finish(l);
        up.server.close();
      });

      test('PROXY v2 in, then TLS: the bytes after the header go to the handshake; PROXY v2 out to the upstream', async () => {
        let first!: Promise<Buffer>;
        const up = await upstream((s) => {
          first = readAll(s);
          s.end();
        });
        const { l, port, name } = await tlsListener(up.port, { expectProxy: true, sendProxy: true });
        const raw = net.connect({ host: '127.0.0.1', port });
        await new Promise((r) => raw.once('connect', r));
        // The header and the ClientHello in one segment where the kernel allows: the native side
        // reads both at once and must feed the rest to OpenSSL.
        raw.cork();
        raw.write(encodeProxyHeader({ address: '203.0.113.7', port: 4242 }, { address: '198.51.100.1', port: 443 }));
        const c = tls.connect({ socket: raw, ca: [certA.cert], servername: 'localhost', ...halfOpen });
        c.on('error', () => {});
        setImmediate(() => raw.uncork());
        await new Promise((r) => c.once('secureConnect', r));
        const answer = readAll(c);
        c.end('x');
        await answer;
        const got = await first;
        assert.equal(got.subarray(0, 12).toString('latin1'), '\r\n\r\n\0\r\nQUIT\n');
        assert.equal(got.subarray(-1).toString(), 'x');
        await closed(c);
        await finish(l);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.client, '203.0.113.7:4242');
        assert.equal(rec.bytes_in, 1);
        up.server.close();
      });

      test('a plaintext client on a TLS listener: closed, counted as rejected tls, the upstream never dialled', async () => {
        const up = await upstream((s) => s.destroy());
        const { l, port, name } = await tlsListener(up.port);
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        s.resume();
        await closed(s);
        await finish(l);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.reason, 'TLS handshake');
        assert.equal(warn.code, 'tls_handshake_failed');
        assert.match(String(warn.error), /^TLS handshake failed: /);
        assert.equal(await metric(`enclaver_connections_rejected_total{listener="${name}",reason="tls"}`), 1);
        assert.equal(await metric(`enclaver_errors_total{listener="${name}",code="tls_handshake_failed"}`), 1);
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 1);
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(up.connections(), 0);
        up.server.close();
      });

      test('a client that offers only TLS 1.1: the handshake fails (TLS 1.2 at least)', async () => {
        const up = await upstream((s) => s.destroy());
        const { l, port, name } = await tlsListener(up.port);
        const c = tlsConnect(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
        await closed(c);
        await finish(l);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.code, 'tls_handshake_failed');
        assert.equal(await metric(`enclaver_connections_rejected_total{listener="${name}",reason="tls"}`), 1);
        assert.equal(up.connections(), 0);
        up.server.close();
      });

      test('a client that stalls mid-handshake is closed at the handshake deadline', async () => {
        const up = await upstream((s) => s.destroy());
        const { l, port, name } = await tlsListener(up.port, { handshakeTimeoutMs: 300 });
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // the start of a ClientHello, then nothing
        s.resume();
        await closed(s);
        await finish(l);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.code, 'tls_handshake_timeout');
        assert.equal(warn.error, 'no TLS handshake within 300 ms');
        assert.equal(await metric(`enclaver_connections_rejected_total{listener="${name}",reason="tls"}`), 1);
        up.server.close();
      });

      test('an upstream that refuses after the handshake: the client is closed, the error logged as the JS path logs it', async () => {
        const { l, port, name } = await tlsListener(await freePort());
        const c = tlsConnect(port, { allowHalfOpen: false } as tls.ConnectionOptions);
        c.resume();
        await closed(c);
        await finish(l);
        const warn = lines.find((r) => r.msg === 'connection not proxied' && r.listener === name)!;
        assert.equal(warn.reason, 'cannot reach cluster app');
        assert.equal(warn.code, 'connect_econnrefused');
        assert.equal(await metric(`enclaver_errors_total{listener="${name}",code="connect_econnrefused"}`), 1);
      });

      test('a new identity (re-issue) takes effect for new connections', async () => {
        const up = await upstream((s) => s.end('ok'));
        const identity = swappable(certA);
        const { l, port } = await tlsListener(up.port, { source: identity.source });
        const fingerprintOf = async (): Promise<string> => {
          const c = tlsConnect(port);
          await new Promise((r) => c.once('secureConnect', r));
          const fp = c.getPeerCertificate().fingerprint256;
          c.resume();
          c.end();
          await closed(c);
          return fp;
        };
        const a = new crypto.X509Certificate(certA.cert).fingerprint256;
        const b = new crypto.X509Certificate(certB.cert).fingerprint256;
        assert.equal(await fingerprintOf(), a);
        identity.swap(certB);
        if (l.fastPath) await eventually('the new identity on the pump threads', () => l.fastPathTlsIdentities > 1);
        assert.equal(await fingerprintOf(), b);
        await finish(l);
        up.server.close();
      });

      test('drain at the deadline: an open TLS connection and one mid-handshake are both ended and reported', async () => {
        const up = await upstream(() => {});
        const { l, port, name } = await tlsListener(up.port);
        const open = tlsConnect(port, { allowHalfOpen: false } as tls.ConnectionOptions);
        await new Promise((r) => open.once('secureConnect', r));
        open.resume();
        const openClosed = closed(open);
        await eventually('the upstream connection', () => up.connections() === 1);
        const stalled = net.connect({ host: '127.0.0.1', port });
        stalled.on('error', () => {});
        stalled.resume();
        stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        const stalledClosed = closed(stalled);
        await eventually('both connections counted', () => l.activeConnections === 2);
        await l.stopAccepting();
        await l.drain(Date.now());
        await openClosed;
        await stalledClosed;
        assert.equal(l.activeConnections, 0);
        assert.equal(await metric(`enclaver_connections_active{listener="${name}"}`), 0);
        assert.equal(await metric(`enclaver_connections_total{listener="${name}"}`), 2);
        const rec = lines.find((r) => r.msg === 'connection closed' && r.listener === name)!;
        assert.equal(rec.closed_by, 'aborted');
        up.server.close();
      });

      test('no fd is left behind by connections that ended every way', async () => {
        const up = await upstream((s) => void readAll(s).then(() => s.end('done')));
        const { l, port } = await tlsListener(up.port, { handshakeTimeoutMs: 300 });
        const before = openFds();
        for (let i = 0; i < 5; i++) {
          const ok = tlsConnect(port);
          await new Promise((r) => ok.once('secureConnect', r));
          const got = readAll(ok);
          ok.end('x');
          await got;
          await closed(ok);
          const plain = net.connect({ host: '127.0.0.1', port });
          plain.on('error', () => {});
          plain.end('not tls');
          plain.resume();
          await closed(plain);
          // A TLSSocket cannot reset; its TCP socket can.
          const raw = net.connect({ host: '127.0.0.1', port });
          raw.on('error', () => {});
          const reset = tlsConnect(0, { socket: raw });
          await new Promise((r) => reset.once('secureConnect', r));
          raw.resetAndDestroy();
          await closed(raw);
        }
        await finish(l);
        await eventually('every fd closed', () => openFds() <= before);
        up.server.close();
      });
    },
  );
}
