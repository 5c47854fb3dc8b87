/**
 * What only the native HTTP engine has to get right (the shared suite, http-ingress.test.ts, runs
 * every ordinary case on both paths): connections handed to JS between requests after the
 * engine served some (Expect: 100-continue, the listener's own path, an Upgrade), pipelined
 * requests, a client that reads its response slowly, a PROXY v2 client kept across the hand-back,
 * and access lines and metrics that do not tell the two paths apart.
 *
 * Raw sockets on loopback: one connection per case, so "the same connection" is certain.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { useFastPath } from '../../../shared/listener/fast-accept.js';
import { addLogTap } from '../../../shared/log/logger.js';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import { encodeProxyHeader } from '../../../shared/proxy-protocol/v2.js';
import { cluster, startIngress, type Ingress } from '../../helpers/http-ingress.js';
import { eventually } from '../../helpers/eventually.js';

const skip = loadNativeAddon() ? false : 'the native addon is not built';

/** An app that answers every request with its method, URL and forwarding header; it echoes after an Upgrade. */
async function startApp(): Promise<{ port: number; requests: string[]; heads: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  /** URLs whose head arrived (the body may still be coming). */
  const heads: string[] = [];
  const server = http.createServer((req, res) => {
    heads.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      const size = /^\/big\/(\d+)$/.exec(req.url ?? '');
      if (size) {
        res.end(Buffer.alloc(Number(size[1]), 0x61));
        return;
      }
      res.end(
        JSON.stringify({ method: req.method, url: req.url, xff: req.headers['x-forwarded-for'], body: Buffer.concat(chunks).toString() }),
      );
    });
  });
  server.on('upgrade', (req, socket: net.Socket) => {
    requests.push(`UPGRADE ${req.url}`);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    heads,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** One client connection: write bytes, and read whole responses (Content-Length framed) one at a time. */
class RawClient {
  private readonly socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.closed) throw new Error(`connection closed; have ${JSON.stringify(this.buffer.toString('latin1'))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** The next response: status, lower-cased head text and body. */
  async response(): Promise<{ status: number; head: string; body: string }> {
    let end = -1;
    await this.until(() => (end = this.buffer.indexOf('\r\n\r\n')) >= 0);
    const head = this.buffer.subarray(0, end).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    await this.until(() => this.buffer.length >= end + 4 + length);
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString('latin1');
    this.buffer = this.buffer.subarray(end + 4 + length);
    return { status, head: head.toLowerCase(), body };
  }

  /** Bytes after the responses read so far (an upgraded stream). */
  async bytes(n: number): Promise<string> {
    await this.until(() => this.buffer.length >= n);
    const out = this.buffer.subarray(0, n).toString('latin1');
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.destroy();
  }
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: n.test\r\n${extra}\r\n`;

describe('native HTTP engine', { skip }, () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  let ingress: Ingress;
  const lines: Record<string, unknown>[] = [];
  let untap: () => void;

  before(async () => {
    useFastPath(true);
    untap = addLogTap((line) => {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* pretty output */
      }
    });
    app = await startApp();
    ingress = await startIngress({
      clusters: new Map([['app', cluster('app', app.port)]]),
      defaultCluster: 'app',
      localEndpoints: [
        {
          path: '/.well-known/enclave-attestation',
          route: 'attestation',
          answer: () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'attested\n' }),
        },
      ],
    });
  });

  after(async () => {
    untap();
    await ingress.close();
    await app.close();
    useFastPath(undefined);
  });

  const linesFor = (path: string) => lines.filter((l) => l.msg === 'http request' && l.path === path);

  test('a connection that served native requests is handed to JS for Expect: 100-continue, then the attestation path, and keeps working', async () => {
    const c = new RawClient(ingress.port);
    try {
      c.write(get('/first'));
      assert.equal((await c.response()).status, 200);
      c.write(get('/second'));
      assert.equal((await c.response()).status, 200);
      c.write('POST /expect HTTP/1.1\r\nHost: n.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
      assert.equal((await c.response()).status, 100);
      c.write('hello');
      const answered = await c.response();
      assert.equal(answered.status, 200);
      assert.equal((JSON.parse(answered.body) as { body: string }).body, 'hello');
      c.write(get('/.well-known/enclave-attestation'));
      const local = await c.response();
      assert.equal(local.status, 200);
      assert.equal(local.body, 'attested\n');
      c.write(get('/after'));
      assert.equal((await c.response()).status, 200);
    } finally {
      c.end();
    }
    await eventually('access lines of all five requests', () => linesFor('/after').length === 1);
    const ids = new Set(['/first', '/second', '/expect', '/.well-known/enclave-attestation', '/after'].map((p) => linesFor(p)[0]?.conn_id));
    assert.equal(ids.size, 1, 'one conn_id for every request of the connection, whichever path served it');
    assert.equal(linesFor('/.well-known/enclave-attestation')[0]!.route, 'attestation');
  });

  test('an Upgrade after native requests on the same connection is carried to the app, and bytes flow both ways', async () => {
    const c = new RawClient(ingress.port);
    try {
      c.write(get('/before-upgrade'));
      assert.equal((await c.response()).status, 200);
      c.write(get('/echo', 'Connection: Upgrade\r\nUpgrade: echo\r\n'));
      assert.equal((await c.response()).status, 101);
      c.write('ping-through');
      assert.equal(await c.bytes('ping-through'.length), 'ping-through');
    } finally {
      c.end();
    }
    assert.ok(app.requests.includes('UPGRADE /echo'));
  });

  test('pipelined requests are answered in order on one connection', async () => {
    const c = new RawClient(ingress.port);
    try {
      c.write(get('/p1') + get('/p2') + 'POST /p3 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 3\r\n\r\nabc' + get('/p4'));
      const urls = [];
      for (let i = 0; i < 4; i++) urls.push((JSON.parse((await c.response()).body) as { url: string }).url);
      assert.deepEqual(urls, ['/p1', '/p2', '/p3', '/p4']);
    } finally {
      c.end();
    }
  });

  test('a client that stops reading gets its whole response once it reads again; other clients are served meanwhile', async () => {
    const size = 8 * 1024 * 1024;
    const slow = new RawClient(ingress.port);
    try {
      slow.pause();
      slow.write(get(`/big/${size}`));
      const other = new RawClient(ingress.port);
      try {
        other.write(get('/meanwhile'));
        assert.equal((await other.response()).status, 200);
      } finally {
        other.end();
      }
      slow.resume();
      const r = await slow.response();
      assert.equal(r.status, 200);
      assert.equal(r.body.length, size);
    } finally {
      slow.end();
    }
  });

  test('a chunked request body is forwarded whole (extensions and trailers dropped), in pieces, on a kept-alive connection', async () => {
    const c = new RawClient(ingress.port);
    try {
      c.write('POST /chunked-up HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n');
      c.write('6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { body: string }).body, 'hello world');
      c.write(get('/after-chunked'));
      assert.equal((await c.response()).status, 200);
    } finally {
      c.end();
    }
    await eventually('the access line of the chunked request', () => linesFor('/chunked-up').length === 1);
    assert.equal(linesFor('/chunked-up')[0]!.status, 200);
  });

  test('chunked framing that goes wrong after the body began: 400, and the app never sees a complete request', async () => {
    const c = new RawClient(ingress.port);
    try {
      c.write('POST /bad-later HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      // Once the app has the head, the engine has forwarded it: the bad chunk comes after.
      await eventually('the app has the head', () => app.heads.includes('/bad-later'));
      c.write('zz\r\nabc\r\n0\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 400);
    } finally {
      c.end();
    }
    await eventually('the access line of the refused body', () => linesFor('/bad-later').length === 1);
    assert.equal(linesFor('/bad-later')[0]!.error, 'bad_chunked_body');
    assert.ok(!app.requests.includes('POST /bad-later'), 'the app saw no complete request');
  });

  test('a request the engine cannot route goes to JS, which answers 404 on the same connection', async () => {
    const only = await startIngress({
      clusters: new Map([['app', cluster('app', app.port)]]),
      routes: [{ name: 'only', hosts: ['n.test'], paths: ['/in/**'], cluster: 'app' }],
    });
    const c = new RawClient(only.port);
    try {
      c.write(get('/in/a'));
      assert.equal((await c.response()).status, 200);
      c.write(get('/out'));
      assert.equal((await c.response()).status, 404);
    } finally {
      c.end();
      await only.close();
    }
  });
});

describe('native HTTP engine behind the outer (PROXY v2)', { skip }, () => {
  test("the PROXY header's client stays the client after the hand-back to JS", async () => {
    useFastPath(true);
    const app = await startApp();
    const ingress = await startIngress({
      clusters: new Map([['app', cluster('app', app.port)]]),
      defaultCluster: 'app',
      expectProxyProtocol: true,
    });
    const c = new RawClient(ingress.port);
    try {
      c.write(
        Buffer.concat([
          encodeProxyHeader({ address: '203.0.113.9', port: 41000 }, { address: '10.0.0.1', port: 80 }),
          Buffer.from(get('/native')),
        ]),
      );
      assert.equal((JSON.parse((await c.response()).body) as { xff: string }).xff, '203.0.113.9');
      // Expect goes to JS: no PROXY header is read again, and the client is still the header's.
      c.write('POST /js HTTP/1.1\r\nHost: n.test\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n');
      assert.equal((await c.response()).status, 100);
      c.write('x');
      assert.equal((JSON.parse((await c.response()).body) as { xff: string }).xff, '203.0.113.9');
    } finally {
      c.end();
      await ingress.close();
      await app.close();
      useFastPath(undefined);
    }
  });
});

describe('access lines and route metrics are the same on both paths', { skip }, () => {
  // access_log off: the lines are debug, below the level, so the engine only sums per route.
  for (const accessLog of [true, false])
    test(`the same requests give the same lines (but duration and connection) and the same counts (access_log ${accessLog})`, async () => {
      const app = await startApp();
      const lines: Record<string, unknown>[] = [];
      const untap = addLogTap((line) => {
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* pretty output */
        }
      });
      const { registry } = await import('../../../shared/metrics/registry.js');
      const seen: Record<string, { lines: Record<string, unknown>[]; metrics: string[] }> = {};
      try {
        for (const mode of ['native', 'js'] as const) {
          useFastPath(mode === 'native');
          const ingress = await startIngress({
            clusters: new Map([['app', cluster('app', app.port)]]),
            routes: [{ name: 'api', hosts: ['*.test'], paths: ['/api/**'], cluster: 'app' }],
            defaultCluster: 'app',
            accessLog,
          });
          const metricLines = async () =>
            (await registry.metrics())
              .split('\n')
              .filter(
                (l) => /^enclaver_http_request(s_total|_duration_seconds_count)\{/.test(l) && l.includes(`listener="${ingress.listener}"`),
              )
              .map((l) => l.replace(ingress.listener, 'L'))
              .sort();
          const counted = async () =>
            (await metricLines())
              .filter((l) => l.startsWith('enclaver_http_requests_total'))
              .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
          const c = new RawClient(ingress.port);
          try {
            for (const path of ['/api/a?q=1', '/other', '/api/b/c']) {
              c.write(get(path));
              await c.response();
            }
            c.write('POST /api/post HTTP/1.1\r\nHost: n.test\r\nContent-Length: 4\r\n\r\nbody');
            await c.response();
          } finally {
            c.end();
          }
          await eventually(`${mode}: four requests counted`, async () => (await counted()) === 4);
          if (accessLog)
            await eventually(
              `${mode}: four access lines`,
              () => lines.filter((l) => l.listener === ingress.listener && l.msg === 'http request').length === 4,
            );
          await ingress.close();
          seen[mode] = {
            lines: lines
              .filter((l) => l.listener === ingress.listener && l.msg === 'http request')
              .map(({ method, host, path, route, status, bytes_out, error }) => ({ method, host, path, route, status, bytes_out, error })),
            metrics: await metricLines(),
          };
        }
      } finally {
        untap();
        useFastPath(undefined);
        await app.close();
      }
      assert.deepEqual(seen.native!.lines, seen.js!.lines);
      assert.deepEqual(seen.native!.metrics, seen.js!.metrics);
      assert.ok(seen.native!.metrics.length > 0);
      assert.equal(seen.native!.lines.length, accessLog ? 4 : 0);
    });
});
