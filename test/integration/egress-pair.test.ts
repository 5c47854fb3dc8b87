/**
 * The egress pair end to end: outer (relay + audit collector) and inner (egress listener + audit
 * sender) as separate processes on emulated vsock, real clients (curl, undici, Python's urllib)
 * through the inner to HTTPS/HTTP servers on loopback reached by names from the outer's hosts file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { EnvHttpProxyAgent, ProxyAgent, fetch as undiciFetch } from 'undici';
import {
  egressListener,
  makeCert,
  readAudit,
  readAuditLines,
  run,
  startSide,
  tempDir,
  type AuditLine,
  type Side,
} from '../helpers/egress.js';
import { eventually } from '../helpers/eventually.js';

const NAMES = ['allowed.test', 'denied.test', 'default.test', 'internal.test', 'other.test'];

describe('egress pair (curl, undici, urllib through the inner proxy)', { timeout: 120_000 }, () => {
  const dir = tempDir('egress-');
  const vsockDir = path.join(dir, 'vsock');
  const auditFile = path.join(dir, 'audit.log');
  let outer: Side;
  let inner: Side;
  let proxyPort = 0;
  let tlsPort = 0;
  let httpPort = 0;
  let certPath = '';
  const servers: net.Server[] = [];
  /** Bytes each connection to 127.0.0.2 (internal.test) delivered: must stay zero. */
  const internalBytes: number[] = [];
  let httpConnections = 0;

  before(async () => {
    fs.mkdirSync(vsockDir);
    const cert = await makeCert(dir, NAMES);
    certPath = cert.certPath;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      let body = 0;
      req.on('data', (c: Buffer) => {
        body += c.length;
      });
      req.on('end', () => {
        res.end(`hello ${req.headers.host} ${req.method} ${req.url} ${body}`);
      });
    };
    const tls1 = https.createServer({ key: cert.key, cert: cert.cert }, handler);
    await new Promise<void>((r) => tls1.listen(0, '127.0.0.1', r));
    tlsPort = (tls1.address() as net.AddressInfo).port;
    const tls2 = https.createServer({ key: cert.key, cert: cert.cert }, handler);
    tls2.on('connection', (s: net.Socket) => s.on('close', () => internalBytes.push(s.bytesRead)));
    await new Promise<void>((r) => tls2.listen(tlsPort, '127.0.0.2', r));
    const plain = http.createServer(handler);
    plain.on('connection', () => {
      httpConnections += 1;
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    httpPort = (plain.address() as net.AddressInfo).port;
    servers.push(tls1, tls2, plain);

    const hostsFile = path.join(dir, 'hosts');
    fs.writeFileSync(hostsFile, `# test names\n127.0.0.1 allowed.test denied.test default.test other.test\n127.0.0.2 internal.test\n`);
    outer = await startSide('outer', { egress_relay: { hosts_file: hostsFile }, audit: { file: auditFile } }, vsockDir);
    inner = await startSide(
      'inner',
      {
        admin: { address: 'tcp://127.0.0.1:0' },
        ...egressListener({
          protocols: ['http_connect', 'http', 'socks5'],
          allow: ['allowed.test', 'internal.test', 'other.test'],
          deny: ['denied.test', '127.0.0.2/32'],
        }),
      },
      vsockDir,
    );
    proxyPort = inner.port('egress');
  });

  after(async () => {
    await inner?.stop();
    await outer?.stop();
    for (const s of servers) {
      (s as http.Server).closeAllConnections?.();
      s.close();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The audit line of the attempt to `host`, once the outer has written it. */
  async function auditFor(host: string, proto: string, nth = 0, where: (l: AuditLine) => boolean = () => true): Promise<AuditLine> {
    let found: AuditLine | undefined;
    await eventually(`audit line for ${host}`, () => {
      found = readAudit(auditFile).filter((l) => l.dest_host === host && l.proto === proto && where(l))[nth];
      return found !== undefined;
    });
    return found!;
  }

  test('CONNECT to an allowed name reaches the HTTPS server, and the audit line says so field by field', async () => {
    const r = await run('curl', ['-sS', '--cacert', certPath, '-x', `http://127.0.0.1:${proxyPort}`, `https://allowed.test:${tlsPort}/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello allowed.test:${tlsPort} GET /x 0`);
    const a = await auditFor('allowed.test', 'http_connect');
    assert.equal(a.type, 'egress');
    assert.ok(Number.isInteger(a.seq) && a.seq >= 1);
    assert.match(a.boot_id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(a.ts as string)));
    assert.ok(Date.parse(a.end_ts as string) >= Date.parse(a.ts as string));
    assert.equal(a.duration_ms, Date.parse(a.end_ts as string) - Date.parse(a.ts as string));
    assert.match(a.conn_id as string, /^[0-9a-f]{6}-[0-9]+$/);
    assert.equal(a.listener, 'egress');
    assert.equal(a.proto, 'http_connect');
    assert.match(a.src as string, /^127\.0\.0\.1:[0-9]+$/);
    assert.equal(a.dest_port, tlsPort);
    assert.equal(a.dest_ip, '127.0.0.1');
    assert.equal(a.sni, null);
    assert.equal(a.decision, 'allow');
    assert.equal(a.rule, 'allowed.test');
    assert.equal(a.reason, 'allowed_by_rule');
    // A TLS handshake plus one request went up and a certificate plus a response came down.
    assert.ok((a.bytes_up as number) > 200, `bytes_up ${a.bytes_up}`);
    assert.ok((a.bytes_down as number) > 500, `bytes_down ${a.bytes_down}`);
    assert.ok(a.closed_by === 'downstream' || a.closed_by === 'upstream', String(a.closed_by));
    // curl may close with a reset when TLS session tickets are still unread; anything else is a bug.
    assert.ok(a.close_error === null || a.close_error === 'ECONNRESET', String(a.close_error));
  });

  test('CONNECT denied by a deny rule answers 403 and is audited with the rule', async () => {
    const r = await run('curl', [
      '-sS',
      '-v',
      '--cacert',
      certPath,
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      `https://denied.test:${tlsPort}/`,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /< HTTP\/1\.1 403 Forbidden/);
    const a = await auditFor('denied.test', 'http_connect');
    assert.deepEqual(
      [a.decision, a.rule, a.reason, a.dest_ip, a.bytes_up, a.bytes_down, a.closed_by],
      ['deny', 'denied.test', 'denied_by_rule', null, 0, 0, null],
    );
  });

  test('CONNECT to a name in no list is denied by default', async () => {
    const r = await run('curl', [
      '-sS',
      '-v',
      '--cacert',
      certPath,
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      `https://default.test:${tlsPort}/`,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /< HTTP\/1\.1 403/);
    const a = await auditFor('default.test', 'http_connect');
    assert.deepEqual([a.decision, a.rule, a.reason], ['deny', null, 'not_in_allow_list']);
  });

  test('an allowed name that resolves into a denied range is cut before a byte flows', async () => {
    const r = await run('curl', [
      '-sS',
      '-v',
      '--cacert',
      certPath,
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      `https://internal.test:${tlsPort}/`,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /< HTTP\/1\.1 403/);
    const a = await auditFor('internal.test', 'http_connect');
    assert.deepEqual(
      [a.decision, a.rule, a.reason, a.dest_ip, a.bytes_up],
      ['deny', '127.0.0.2/32', 'resolved_address_denied', '127.0.0.2', 0],
    );
    await eventually('the relay connection to 127.0.0.2 to close', () => internalBytes.length > 0);
    assert.deepEqual(internalBytes, [0]);
  });

  test('bytes pipelined behind a refused CONNECT are never processed (RFC 9931)', async () => {
    const before = httpConnections;
    const s = net.connect(proxyPort, '127.0.0.1');
    s.on('error', () => {});
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
    });
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(
      `CONNECT denied.test:${tlsPort} HTTP/1.1\r\nHost: denied.test:${tlsPort}\r\n\r\nGET http://allowed.test:${httpPort}/smuggled HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\n\r\n`,
    );
    await closed;
    assert.equal(got.match(/HTTP\/1\.1 /g)?.length, 1, got);
    assert.match(got, /^HTTP\/1\.1 403 /);
    assert.equal(httpConnections, before, 'the pipelined request never reached a server');
  });

  test('malformed CONNECT targets are refused with 400 and never reach the relay', async () => {
    for (const target of ['allowed.test', 'allowed.test:0443', 'user@allowed.test:443', '127.1:80']) {
      const r = await run('curl', [
        '-sS',
        '-v',
        '-x',
        `http://127.0.0.1:${proxyPort}`,
        '--request-target',
        target,
        '-X',
        'CONNECT',
        '-H',
        'Host:',
        `http://allowed.test:${tlsPort}/`,
      ]);
      const status = /< HTTP\/1\.1 ([0-9]{3})/.exec(r.stderr)?.[1];
      // 127.1 is well-formed: it is 127.0.0.1, which no rule allows.
      assert.equal(status, target === '127.1:80' ? '403' : '400', `${target}: ${r.stderr}`);
    }
  });

  test('SOCKS5 with curl --socks5-hostname on the same port', async () => {
    const r = await run('curl', [
      '-sS',
      '--cacert',
      certPath,
      '--socks5-hostname',
      `127.0.0.1:${proxyPort}`,
      `https://allowed.test:${tlsPort}/s`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello allowed.test:${tlsPort} GET /s 0`);
    const a = await auditFor('allowed.test', 'socks5');
    assert.deepEqual([a.decision, a.rule, a.dest_ip], ['allow', 'allowed.test', '127.0.0.1']);
    const denied = await run('curl', ['-sS', '--socks5-hostname', `127.0.0.1:${proxyPort}`, `https://denied.test:${tlsPort}/`]);
    assert.equal(denied.code, 97, denied.stderr);
    // curl 7.88 prints the reply code: 2 is "connection not allowed by ruleset".
    assert.match(denied.stderr, /\(2\)/);
    const d = await auditFor('denied.test', 'socks5');
    assert.deepEqual([d.decision, d.reason], ['deny', 'denied_by_rule']);
  });

  test('absolute-form HTTP is forwarded with keep-alive on both sides', async () => {
    const before = httpConnections;
    const r = await run('curl', [
      '-sS',
      '-v',
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      `http://allowed.test:${httpPort}/one`,
      `http://allowed.test:${httpPort}/two`,
      '--data-binary',
      'abc',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello allowed.test:${httpPort} POST /one 3hello allowed.test:${httpPort} POST /two 3`);
    assert.match(r.stderr, /Re-using existing connection/);
    assert.equal(httpConnections - before, 1, 'one upstream connection served both requests');
    const first = await auditFor('allowed.test', 'http', 0);
    const second = await auditFor('allowed.test', 'http', 1);
    for (const a of [first, second])
      assert.deepEqual([a.decision, a.rule, a.dest_ip, a.bytes_up, a.dest_port], ['allow', 'allowed.test', '127.0.0.1', 3, httpPort]);
    assert.equal(second.seq, first.seq + 1);
    // Two requests on one client connection: the second attempt's id extends the first's.
    assert.equal(second.conn_id, `${first.conn_id}.2`);
    const denied = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      `http://denied.test:${httpPort}/`,
    ]);
    assert.equal(denied.stdout, '403');
  });

  test("Node's undici ProxyAgent and EnvHttpProxyAgent tunnel through CONNECT", async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxyPort}`, requestTls: { ca: fs.readFileSync(certPath, 'utf8') } });
    try {
      const res = await undiciFetch(`https://other.test:${tlsPort}/u`, { dispatcher: agent });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), `hello other.test:${tlsPort} GET /u 0`);
      await assert.rejects(undiciFetch(`https://default.test:${tlsPort}/`, { dispatcher: agent }));
    } finally {
      await agent.close();
    }
    const a = await auditFor('other.test', 'http_connect');
    assert.equal(a.decision, 'allow');
    const d = await auditFor('default.test', 'http_connect', 1);
    assert.deepEqual([d.decision, d.reason], ['deny', 'not_in_allow_list']);
    // EnvHttpProxyAgent: what HTTP(S)_PROXY in the app's environment gives an undici user.
    const proxy = `http://127.0.0.1:${proxyPort}`;
    const env = new EnvHttpProxyAgent({
      httpProxy: proxy,
      httpsProxy: proxy,
      noProxy: '',
      requestTls: { ca: fs.readFileSync(certPath, 'utf8') },
    });
    try {
      const res = await undiciFetch(`https://other.test:${tlsPort}/env`, { dispatcher: env });
      assert.equal(await res.text(), `hello other.test:${tlsPort} GET /env 0`);
    } finally {
      await env.close();
    }
  });

  test("Python's urllib honours HTTPS_PROXY", async () => {
    const script =
      'import ssl,sys,urllib.request; ctx=ssl.create_default_context(cafile=sys.argv[2]); print(urllib.request.urlopen(sys.argv[1], context=ctx).read().decode(), end="")';
    const env = { ...process.env, HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`, NO_PROXY: '' };
    const r = await run('python3', ['-c', script, `https://allowed.test:${tlsPort}/py`, certPath], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello allowed.test:${tlsPort} GET /py 0`);
  });

  test(
    'hostile SOCKS5 requests get the RFC 1928 reply and disguised addresses are judged as what they are',
    { timeout: 30_000 },
    async () => {
      const ask = async (bytes: Buffer, greeting = Buffer.from([5, 1, 0])): Promise<Buffer> => {
        const s = net.connect(proxyPort, '127.0.0.1');
        s.on('error', () => {});
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        const closed = new Promise<void>((r) => s.once('close', () => r()));
        await new Promise<void>((r) => s.once('connect', () => r()));
        s.write(greeting);
        await eventually('method reply', () => Buffer.concat(chunks).length >= 2);
        if (Buffer.concat(chunks)[1] === 0) s.write(bytes);
        await closed;
        return Buffer.concat(chunks);
      };
      const domain = (name: string, port: number) =>
        Buffer.concat([Buffer.from([5, 1, 0, 3, Buffer.byteLength(name)]), Buffer.from(name), Buffer.from([port >> 8, port & 0xff])]);
      const reply = (b: Buffer) => b.subarray(2, 4)[1];
      assert.deepEqual(
        [...(await ask(Buffer.alloc(0), Buffer.from([5, 1, 2])))],
        [5, 0xff],
        'username/password only: no acceptable method',
      );
      assert.equal(reply(await ask(Buffer.from([5, 2, 0, 1, 127, 0, 0, 1, 0, 80]))), 0x07, 'BIND');
      assert.equal(reply(await ask(Buffer.from([5, 1, 0, 9, 0, 0]))), 0x08, 'unknown address type');
      assert.equal(reply(await ask(domain('2130706433', tlsPort))), 0x02, 'decimal IPv4 in a domain field');
      assert.equal(reply(await ask(domain('allowed.test\0.x', tlsPort))), 0x01, 'NUL in a domain');
      const mapped = Buffer.from([5, 1, 0, 4, ...Buffer.from('00000000000000000000ffff7f000001', 'hex'), tlsPort >> 8, tlsPort & 0xff]);
      assert.equal(reply(await ask(mapped)), 0x02, 'IPv4-mapped IPv6');
      const disguised = await auditFor('127.0.0.1', 'socks5');
      assert.deepEqual([disguised.decision, disguised.reason, disguised.dest_port], ['deny', 'not_in_allow_list', tlsPort]);
    },
  );

  test('require_sni_match refuses a ClientHello that names another host (domain fronting)', async () => {
    const sniInner = await startSide(
      'inner',
      egressListener({
        protocols: ['http_connect'],
        allow: ['allowed.test', 'other.test'],
        require_sni_match: true,
      }),
      vsockDir,
    );
    try {
      const port = sniInner.port('egress');
      const ok = await run('curl', ['-sS', '--cacert', certPath, '-x', `http://127.0.0.1:${port}`, `https://allowed.test:${tlsPort}/sni`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, `hello allowed.test:${tlsPort} GET /sni 0`);
      const fronted = await run(
        'openssl',
        [
          's_client',
          '-proxy',
          `127.0.0.1:${port}`,
          '-connect',
          `allowed.test:${tlsPort}`,
          '-servername',
          'other.test',
          '-CAfile',
          certPath,
        ],
        { ...process.env },
      );
      // The proxy cuts the tunnel after reading the ClientHello: no handshake completes.
      assert.notEqual(fronted.code, 0);
      const fromSniInner = (l: AuditLine) => l.sni !== null;
      const good = await auditFor('allowed.test', 'http_connect', 0, fromSniInner);
      assert.deepEqual([good.decision, good.sni, good.reason], ['allow', 'allowed.test', 'allowed_by_rule']);
      const bad = await auditFor('allowed.test', 'http_connect', 1, fromSniInner);
      assert.deepEqual(
        [bad.decision, bad.sni, bad.reason, bad.bytes_up, bad.rule],
        ['deny', 'other.test', 'sni_mismatch', 0, 'allowed.test'],
      );
    } finally {
      await sniInner.stop();
    }
  });

  test('/metrics counts attempts by decision and reason, as the audit log does', async () => {
    await eventually('admin address', () => inner.addresses.admin !== undefined);
    const res = await fetch(`http://127.0.0.1:${inner.port('admin')}/metrics`);
    const text = await res.text();
    const metric = (labels: string) =>
      Number(new RegExp(`^enclaver_egress_attempts_total\\{${labels}\\} ([0-9]+)$`, 'm').exec(text)?.[1] ?? 0);
    const lines = readAudit(auditFile).filter((l) => l.boot_id === readAudit(auditFile)[0]!.boot_id);
    const fromAudit = (proto: string, decision: string, reason: string) =>
      lines.filter((l) => l.proto === proto && l.decision === decision && l.reason === reason).length;
    assert.equal(
      metric('listener="egress",proto="http_connect",decision="deny",reason="denied_by_rule"'),
      fromAudit('http_connect', 'deny', 'denied_by_rule'),
    );
    assert.equal(metric('listener="egress",proto="http_connect",decision="deny",reason="resolved_address_denied"'), 1);
    assert.equal(
      metric('listener="egress",proto="socks5",decision="allow",reason="allowed_by_rule"'),
      fromAudit('socks5', 'allow', 'allowed_by_rule'),
    );
    assert.match(text, /^enclaver_egress_bytes_total\{listener="egress",direction="upstream_to_client"\} [1-9][0-9]*$/m);
    assert.match(text, /^enclaver_audit_unacknowledged 0$/m);
    assert.match(text, /^enclaver_audit_dropped_total 0$/m);
  });

  test('every attempt of the run is in the audit log exactly once, in sequence', async () => {
    // 1 + 1 + 1 + 1 CONNECT, 1 pipelined, 4 malformed, 2 SOCKS5, 3 absolute-form, 3 undici, 1 urllib,
    // 4 hostile SOCKS5 that reached a decision (2 protocol errors and no-method are audited too), 2 SNI.
    const want = 18 + 6 + 2;
    await eventually('audit to settle', () => readAudit(auditFile).length >= want).catch(() => {});
    const lines = readAudit(auditFile);
    assert.equal(lines.length, want, lines.map((l) => `${l.proto} ${l.dest_host} ${l.reason}`).join('\n'));
    // Two inner processes ran (the SNI one has its own boot): each numbers its records from 1.
    // Counted with the chain's own lines (line 1 of a boot is its attestation, then checkpoints).
    const all = readAuditLines(auditFile);
    for (const boot of new Set(lines.map((l) => l.boot_id))) {
      const seqs = all.filter((l) => l.boot_id === boot).map((l) => l.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
      );
    }
    assert.equal(new Set(lines.map((l) => l.conn_id)).size, lines.length);
  });
});
