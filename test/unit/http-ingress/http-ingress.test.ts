/**
 * The HTTP ingress listener kind on loopback in front of real apps, driven by real clients (curl,
 * undici, ws) and by raw sockets for what real clients refuse to send. Each case asserts the
 * status or close the client sees, what the app received (or that it received nothing), and the
 * access-log line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { useFastPath } from '../../../shared/listener/fast-accept.js';
import { addLogTap } from '../../../shared/log/logger.js';
import { encodeProxyHeader } from '../../../shared/proxy-protocol/v2.js';
import { cluster, firstStatus, rawExchange, startIngress, TEST_LIMITS, type Ingress } from '../../helpers/http-ingress.js';
import { selfSignedLoopbackCertificate } from '../../helpers/tls.js';
import { eventually } from '../../helpers/eventually.js';

const exec = promisify(execFile);

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
}

/** An app that echoes what it received as JSON, with a few special paths. */
async function startApp(name: string): Promise<{ port: number; seen: Seen[]; connections: () => number; close(): Promise<void> }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const hash = crypto.createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (d: Buffer) => {
      bodyBytes += d.length;
      hash.update(d);
    });
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, bodyBytes, bodySha256: hash.digest('hex') };
      seen.push(s);
      if (req.url === '/reset-before-head') {
        req.socket.destroy();
        return;
      }
      if (req.url === '/reset-mid-body') {
        res.writeHead(200, { 'content-length': '1000000' });
        res.write(Buffer.alloc(1000, 0x61), () => req.socket.destroy());
        return;
      }
      if (req.url?.startsWith('/download/')) {
        const total = Number(req.url.slice('/download/'.length));
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-app': name,
          connection: 'x-app-private',
          'x-app-private': 'secret',
        });
        const chunk = Buffer.alloc(64 * 1024, 0x62);
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            const n = Math.min(chunk.length, total - sent);
            sent += n;
            if (!res.write(chunk.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': name });
      res.end(JSON.stringify({ app: name, ...s }));
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\n\r\nrefused');
      return;
    }
    if (req.url === '/refuse-then-reset') {
      socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 100000\r\n\r\npartial', () => socket.destroy());
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ xff: req.headers['x-forwarded-for'], app: name }));
      ws.on('message', (data, binary) => ws.send(data, { binary }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// Every case on both paths: the native HTTP engine (plain HTTP/1.1 on the pump threads) and the
// JS path (ENCLAVER_FASTPATH=0); a client, the app and the access log must not tell them apart.
for (const mode of ['native', 'js'] as const)
  describe(`HTTP ingress listener kind (${mode} path)`, () => {
    let api: Awaited<ReturnType<typeof startApp>>;
    let web: Awaited<ReturnType<typeof startApp>>;
    let ingress: Ingress;
    const lines: Record<string, unknown>[] = [];
    let untap: () => void;

    before(async () => {
      useFastPath(mode === 'native');
      untap = addLogTap((line) => {
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* pretty output */
        }
      });
      [api, web] = await Promise.all([startApp('api'), startApp('web')]);
      ingress = await startIngress({
        clusters: new Map([
          ['api', cluster('api', api.port)],
          ['web', cluster('web', web.port)],
        ]),
        routes: [
          { name: 'api-host', hosts: ['api.example.com'], paths: [], cluster: 'api' },
          { name: 'api-path', hosts: ['*.example.com'], paths: ['/v1/**'], cluster: 'api' },
        ],
        defaultCluster: 'web',
      });
    });

    after(async () => {
      untap();
      await ingress.close();
      await Promise.all([api.close(), web.close()]);
      useFastPath(undefined);
    });

    const accessLines = (path: string) => lines.filter((l) => l.msg === 'http request' && l.path === path);
    const waitForLine = async (path: string, n = 1) => {
      await eventually(`${n} access line(s) for ${path}`, () => accessLines(path).length >= n);
      return accessLines(path)[n - 1]!;
    };

    test('routes by host glob and path glob, first match wins, then the default route', async () => {
      const get = async (host: string, path: string) =>
        JSON.parse((await exec('curl', ['-sS', '-H', `Host: ${host}`, `${ingress.url}${path}`])).stdout) as { app: string; url: string };
      assert.equal((await get('api.example.com', '/anything?q=1')).app, 'api');
      assert.equal((await get('www.example.com', '/v1/users/7')).app, 'api');
      assert.equal((await get('www.example.com', '/v2/users/7')).app, 'web');
      assert.equal((await get('other.test', '/v1/x')).app, 'web');
      const line = await waitForLine('/anything');
      assert.equal(line.route, 'api-host');
      assert.equal(line.status, 200);
      assert.equal(line.method, 'GET');
      assert.equal(line.host, 'api.example.com');
      assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
      assert.ok(typeof line.duration_ms === 'number' && (line.bytes_out as number) > 0);
    });

    test('a listener without default route answers 404 for unrouted requests and forwards nothing', async () => {
      const only = await startIngress({
        clusters: new Map([['api', cluster('api', api.port)]]),
        routes: [{ name: 'r', hosts: ['a.test'], paths: [], cluster: 'api' }],
      });
      try {
        const before = api.seen.length;
        const { stdout } = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: b.test', `${only.url}/x`]);
        assert.equal(stdout, '404');
        assert.equal(api.seen.length, before);
      } finally {
        await only.close();
      }
    });

    test('forwarding headers come from the proxy, never from the client; hop-by-hop headers stop at the proxy both ways', async () => {
      const { stdout } = await exec('curl', [
        '-sS',
        '-D',
        '-',
        '-H',
        'Host: www.example.com',
        '-H',
        'X-Forwarded-For: 6.6.6.6',
        '-H',
        'Forwarded: for=6.6.6.6',
        '-H',
        'X-Real-IP: 6.6.6.6',
        '-H',
        'X-Forwarded-Proto: https',
        '-H',
        'Connection: keep-alive, X-Hop',
        '-H',
        'X-Hop: private',
        '-H',
        'TE: trailers',
        '-H',
        'Keep-Alive: timeout=5',
        `${ingress.url}/download/10`,
      ]);
      const seen = web.seen.find((s) => s.url === '/download/10')!;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], 'www.example.com');
      assert.equal(seen.headers.forwarded, 'for=127.0.0.1;proto=http;host=www.example.com');
      assert.equal(seen.headers['x-real-ip'], undefined);
      assert.equal(seen.headers['x-hop'], undefined);
      assert.equal(seen.headers.te, undefined);
      assert.equal(seen.headers['keep-alive'], undefined);
      assert.equal(seen.headers.host, 'www.example.com');
      // The app's Connection-named header does not reach the client.
      assert.match(stdout, /^x-app: web\r$/m);
      assert.doesNotMatch(stdout, /x-app-private/i);
    });

    test('keep-alive on both legs: many requests over one client connection reuse the app connection', async () => {
      const agent = new Agent({ connections: 1 });
      const before = web.connections();
      const ingressConnections = lines.filter((l) => l.msg === 'http request' && l.path === '/ka').length;
      try {
        for (let i = 0; i < 20; i++) {
          const res = await request(`${ingress.url}/ka`, { dispatcher: agent, headers: { host: 'keepalive.test' } });
          assert.equal(res.statusCode, 200);
          await res.body.text();
        }
      } finally {
        await agent.close();
      }
      const clients = new Set(
        lines
          .filter((l) => l.msg === 'http request' && l.path === '/ka')
          .slice(ingressConnections)
          .map((l) => l.conn_id),
      );
      assert.equal(clients.size, 1, 'one client connection carried all 20 requests');
      assert.ok(web.connections() - before <= 1, `the app saw ${web.connections() - before} new connections for 20 sequential requests`);
    });

    test('request and response bodies stream through intact (32 MiB each way)', async () => {
      const size = 32 * 1024 * 1024;
      const block = crypto.randomBytes(1024 * 1024);
      const expected = crypto.createHash('sha256');
      for (let i = 0; i < 32; i++) expected.update(block);
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < 32; i++) yield block;
        })(),
      );
      const up = await request(`${ingress.url}/upload`, { method: 'POST', body, headers: { host: 'up.test' } });
      const seen = (await up.body.json()) as Seen;
      assert.equal(seen.bodyBytes, size);
      assert.equal(seen.bodySha256, expected.digest('hex'));
      assert.equal(seen.headers['transfer-encoding'], 'chunked');
      const down = await request(`${ingress.url}/download/${size}`, { headers: { host: 'down.test' } });
      let received = 0;
      for await (const chunk of down.body) received += (chunk as Buffer).length;
      assert.equal(received, size);
    });

    for (const [name, raw] of [
      [
        'Content-Length with Transfer-Encoding',
        'POST /smuggle-clte HTTP/1.1\r\nHost: s.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: s.test\r\n\r\n',
      ],
      [
        'two different Content-Lengths',
        'POST /smuggle-cl HTTP/1.1\r\nHost: s.test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /smuggled HTTP/1.1\r\n\r\n',
      ],
      ['a bad chunk size', 'POST /smuggle-chunk HTTP/1.1\r\nHost: s.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
      ['obs-fold', 'GET /smuggle-fold HTTP/1.1\r\nHost: s.test\r\nX-Folded: a\r\n b\r\n\r\n'],
      ['a bare LF line ending', 'GET /smuggle-lf HTTP/1.1\nHost: s.test\n\n'],
      [
        'Transfer-Encoding other than chunked last',
        'POST /smuggle-te HTTP/1.1\r\nHost: s.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      ],
      ['a space before the header colon', 'GET /smuggle-space HTTP/1.1\r\nHost : s.test\r\n\r\n'],
    ] as const) {
      test(`a request with ${name} is answered 400 and closed; the app receives nothing`, async () => {
        const before = web.seen.length + api.seen.length;
        const errorsBefore = lines.filter((l) => l.msg === 'http request' && l.status === 400).length;
        const { text, closed } = await rawExchange(ingress.port, raw);
        assert.equal(firstStatus(text), 400, text);
        assert.ok(closed);
        assert.equal(text.match(/HTTP\/1\.1/g)?.length, 1, 'exactly one response');
        assert.equal(web.seen.length + api.seen.length, before, 'nothing was forwarded');
        assert.ok(!web.seen.some((s) => s.url === '/smuggled'));
        await eventually(
          'the access line of the refused request',
          () => lines.filter((l) => l.msg === 'http request' && l.status === 400).length > errorsBefore,
        );
      });
    }

    test('an oversized head is 431, too many header fields is 431, and neither reaches the app', async () => {
      const before = web.seen.length;
      const big = await rawExchange(
        ingress.port,
        `GET /big HTTP/1.1\r\nHost: s.test\r\nX-Big: ${'a'.repeat(TEST_LIMITS.maxHeaderBytes)}\r\n\r\n`,
      );
      assert.equal(firstStatus(big.text), 431);
      const many = Array.from({ length: TEST_LIMITS.maxHeaders + 1 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
      const counted = await rawExchange(ingress.port, `GET /many HTTP/1.1\r\nHost: s.test\r\n${many}\r\n`);
      assert.equal(firstStatus(counted.text), 431);
      assert.equal(web.seen.length, before);
      assert.equal((await waitForLine('/many')).status, 431);
    });

    test('a client that never finishes its head gets 408 and is closed; other connections are untouched', async () => {
      const slow = await startIngress({
        clusters: new Map([['web', cluster('web', web.port)]]),
        defaultCluster: 'web',
        limits: { ...TEST_LIMITS, headTimeoutMs: 300 },
      });
      const agent = new Agent({ connections: 1 });
      try {
        const first = await request(`${slow.url}/before`, { dispatcher: agent });
        await first.body.text();
        const { text, closed } = await rawExchange(slow.port, 'GET /slow HTTP/1.1\r\nHost: s.test\r\nX-Partial: ');
        assert.equal(firstStatus(text), 408);
        assert.ok(closed);
        // The kept-alive connection opened before is still served.
        const second = await request(`${slow.url}/after`, { dispatcher: agent });
        assert.equal(second.statusCode, 200);
        await second.body.text();
      } finally {
        await agent.close();
        await slow.close();
      }
    });

    test('an app that resets before its response head → 502; mid-body → the client sees a truncated response, not a complete one', async () => {
      const early = await exec('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-H',
        'Host: r.test',
        `${ingress.url}/reset-before-head`,
      ]);
      assert.equal(early.stdout, '502');
      assert.equal((await waitForLine('/reset-before-head')).status, 502);
      const mid = await exec('curl', ['-sS', '-o', '/dev/null', '-H', 'Host: r.test', `${ingress.url}/reset-mid-body`]).then(
        () => null,
        (err: { code: number }) => err,
      );
      assert.ok(mid && [18, 56].includes(mid.code), `curl reports a partial transfer (exit ${mid?.code})`);
      const line = await waitForLine('/reset-mid-body');
      assert.equal(line.status, 200);
      assert.equal(line.error, 'upstream_reset');
    });

    test('WebSocket: the upgrade is carried to the app and frames flow both ways', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${ingress.port}/chat`, { headers: { host: 'ws.test', 'x-forwarded-for': '6.6.6.6' } });
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        ws.on('message', (d) => {
          messages.push(String(d));
          if (messages.length === 1) ws.send('ping through the enclave');
          else ws.close();
        });
        ws.on('close', () => resolve());
        ws.on('error', reject);
      });
      assert.deepEqual(JSON.parse(messages[0]!), { xff: '127.0.0.1', app: 'web' });
      assert.equal(messages[1], 'ping through the enclave');
      const line = await waitForLine('/chat');
      assert.equal(line.status, 101);
    });

    test("an Upgrade the app refuses reaches the client with the app's status and the connection closes", async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${ingress.port}/refuse`, { headers: { host: 'ws.test' } });
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(-1));
      });
      assert.equal(status, 403);
      assert.equal((await waitForLine('/refuse')).status, 403);
    });

    test('an app that refuses an Upgrade and then resets: the client gets that one answer, cut off, never a second one', async () => {
      const { text, closed } = await rawExchange(
        ingress.port,
        'GET /refuse-then-reset HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      );
      assert.equal(firstStatus(text), 403);
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, text);
      assert.ok(closed);
    });

    test('CONNECT is refused with 405', async () => {
      const { text } = await rawExchange(ingress.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      assert.equal(firstStatus(text), 405);
    });

    test('per-route request counts and latency histograms are exported', async () => {
      const { registry } = await import('../../../shared/metrics/registry.js');
      const text = await registry.metrics();
      assert.match(
        text,
        new RegExp(`enclaver_http_requests_total\\{listener="${ingress.listener}",route="api-host",status="2xx"\\} [1-9]`),
      );
      assert.match(
        text,
        new RegExp(`enclaver_http_request_duration_seconds_count\\{listener="${ingress.listener}",route="default"\\} [1-9]`),
      );
    });
  });

describe('HTTP/2 on a TLS HTTP listener (ALPN h2), forwarded to the app as HTTP/1.1', () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  let ingress: Ingress;
  const certificate = selfSignedLoopbackCertificate();
  const context = tls.createSecureContext({ cert: certificate.cert, key: certificate.key });

  before(async () => {
    app = await startApp('h2app');
    ingress = await startIngress({
      clusters: new Map([['app', cluster('app', app.port)]]),
      defaultCluster: 'app',
      tls: () => Promise.resolve(context),
      http2: true,
    });
  });
  after(async () => {
    await ingress.close();
    await app.close();
  });

  test('curl --http2 gets HTTP/2; the app gets HTTP/1.1 with Host from :authority and proto https', async () => {
    const { stdout } = await exec('curl', ['-sSk', '--http2', '-w', '\\n%{http_version}', `https://localhost:${ingress.port}/h2?x=1`]);
    const [body, version] = stdout.split('\n');
    assert.equal(version, '2');
    const seen = JSON.parse(body!) as Seen & { app: string };
    assert.equal(seen.app, 'h2app');
    assert.equal(seen.url, '/h2?x=1');
    assert.equal(seen.headers.host, `localhost:${ingress.port}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    const http1 = await exec('curl', [
      '-sSk',
      '--http1.1',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version}',
      `https://localhost:${ingress.port}/h1`,
    ]);
    assert.equal(http1.stdout, '1.1');
  });

  test('concurrent streams with bodies on one HTTP/2 connection all arrive intact', async () => {
    const session = http2.connect(`https://localhost:${ingress.port}`, { rejectUnauthorized: false });
    try {
      const one = (i: number) =>
        new Promise<Seen>((resolve, reject) => {
          const body = crypto.randomBytes(100_000 + i);
          const s = session.request({ ':method': 'POST', ':path': `/stream/${i}` });
          let text = '';
          s.on('data', (d: Buffer) => {
            text += d.toString();
          });
          s.on('end', () => resolve(JSON.parse(text) as Seen));
          s.on('error', reject);
          s.end(body);
        });
      const seen = await Promise.all(Array.from({ length: 10 }, (_, i) => one(i)));
      seen.forEach((s, i) => {
        assert.equal(s.url, `/stream/${i}`);
        assert.equal(s.bodyBytes, 100_000 + i);
      });
    } finally {
      session.close();
    }
  });
});

for (const mode of ['native', 'js'] as const)
  describe(`HTTP listener behind the outer (PROXY v2) (${mode} path)`, () => {
    before(() => useFastPath(mode === 'native'));
    after(() => useFastPath(undefined));
    test("a request in the same segment as the PROXY header is parsed; the client address is the header's", async () => {
      const app = await startApp('pp');
      const ingress = await startIngress({
        clusters: new Map([['app', cluster('app', app.port)]]),
        defaultCluster: 'app',
        expectProxyProtocol: true,
      });
      try {
        const header = encodeProxyHeader({ address: '203.0.113.7', port: 40000 }, { address: '10.0.0.1', port: 443 });
        const { text } = await rawExchange(
          ingress.port,
          Buffer.concat([header, Buffer.from('GET /same-segment HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n')]),
        );
        assert.equal(firstStatus(text), 200, text);
        const seen = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Seen;
        assert.equal(seen.url, '/same-segment');
        assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7');
      } finally {
        await ingress.close();
        await app.close();
      }
    });
  });
