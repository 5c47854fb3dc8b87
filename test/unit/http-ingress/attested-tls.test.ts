/**
 * Attested TLS end to end on loopback: an HTTP listener with a key generated in-process
 * (`AttestedCertificate`), documents from the NSM simulator, and the verifying clients — the CLI
 * (`attestation check`), the undici connector and the https.Agent — against the real listener and
 * against a man in the middle that terminates TLS with its own key and relays (caught by the
 * binding), replays an old document (caught by the nonce) or rewrites the binding (caught by the
 * signature). A wrong PCR is named as such.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tag } from 'cbor-x';
import { Agent, request } from 'undici';
import { attestedConnector, attestedHttpsAgent, AttestationError } from '../../../shared/attestation/client.js';
import { cborDecoder, cborEncoder } from '../../../shared/attestation/cose.js';
import { ATTESTATION_WELL_KNOWN_PATH, spkiOf, tlsBindingUserData } from '../../../shared/attestation/tls-binding.js';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';
import { attestationEndpoint } from '../../../proxy-inner/tls/attestation-endpoint.js';
import { AttestedCertificate } from '../../../proxy-inner/tls/attested-certificate.js';
import { cluster, startIngress, type Ingress } from '../../helpers/http-ingress.js';
import { runCliToEnd, tempDir } from '../../helpers/process.js';
import { selfSignedLoopbackCertificate } from '../../helpers/tls.js';
import crypto from 'node:crypto';
import type net from 'node:net';

const PCR0 = 'a1'.repeat(48);
type MitmMode = 'relay' | 'replay' | 'rebind';

/** Rewrites a document's user_data, keeping the (now wrong) signature: what a forger would send. */
function rebind(document: Buffer, userData: Buffer): Buffer {
  const decoded = cborDecoder.decode(document) as Tag | unknown[];
  const items = (decoded instanceof Tag ? decoded.value : decoded) as [Buffer, Map<unknown, unknown>, Buffer, Buffer];
  const payload = cborDecoder.decode(items[2]) as Map<string, unknown>;
  payload.set('user_data', userData);
  const forged = [items[0], items[1], Buffer.from(cborEncoder.encode(payload)), items[3]];
  return Buffer.from(cborEncoder.encode(decoded instanceof Tag ? new Tag(forged, 18) : forged));
}

describe('attested TLS on an HTTP listener', () => {
  const dir = tempDir();
  const rootPath = path.join(dir, 'nsm-root.pem');
  const simulator = new NsmSimulator({ pcrs: new Map([[0, Buffer.from(PCR0, 'hex')]]), rootCertificatePath: rootPath });
  const nsm = new Nsm(simulator);
  const identity = new AttestedCertificate({ names: ['localhost', '127.0.0.1'] });
  const mitmTls = selfSignedLoopbackCertificate();
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  let app: http.Server;
  let ingress: Ingress;
  let mitm: https.Server;
  let mitmPort: number;
  let mitmMode: MitmMode = 'relay';
  let capturedDocument: Buffer | undefined;

  before(async () => {
    app = http.createServer((req, res) => res.end(JSON.stringify({ url: req.url, proto: req.headers['x-forwarded-proto'] })));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    ingress = await startIngress({
      clusters: new Map([['app', cluster('app', (app.address() as net.AddressInfo).port)]]),
      defaultCluster: 'app',
      tls: () => identity.secureContext(),
      localEndpoints: [attestationEndpoint({ nsm, userData: identity.userData, rate: { perSecond: 1000, burst: 1000 } })],
    });
    // The man in the middle: terminates TLS with its own key and relays requests to the enclave.
    mitm = https.createServer({ key: mitmTls.key, cert: mitmTls.cert }, (req, res) => {
      void (async () => {
        const url = req.url ?? '/';
        if (url.startsWith(ATTESTATION_WELL_KNOWN_PATH) && mitmMode === 'replay' && capturedDocument) {
          res.writeHead(200, { 'content-type': 'application/cbor', 'content-length': capturedDocument.length }).end(capturedDocument);
          return;
        }
        const upstream = await request(`https://127.0.0.1:${ingress.port}${url}`, { dispatcher: insecure, method: req.method as 'GET' });
        let body: Buffer = Buffer.from(await upstream.body.arrayBuffer());
        if (url.startsWith(ATTESTATION_WELL_KNOWN_PATH)) {
          capturedDocument ??= body;
          if (mitmMode === 'rebind') body = rebind(body, tlsBindingUserData(spkiOf(new crypto.X509Certificate(mitmTls.cert))));
        }
        res
          .writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type']), 'content-length': body.length })
          .end(body);
      })();
    });
    await new Promise<void>((r) => mitm.listen(0, '127.0.0.1', r));
    mitmPort = (mitm.address() as net.AddressInfo).port;
  });

  after(async () => {
    await ingress.close();
    await insecure.close();
    mitm.closeAllConnections();
    app.closeAllConnections();
    await Promise.all([new Promise((r) => mitm.close(r)), new Promise((r) => app.close(r))]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const check = (port: number, pcr = PCR0) =>
    runCliToEnd(['attestation', 'check', `https://127.0.0.1:${port}`, '--pcr', `0=${pcr}`, '--root', rootPath]);

  test('the CLI passes the enclave itself and names the key it checked', async () => {
    const r = await check(ingress.port);
    assert.equal(r.code, 0, r.stderr);
    const verdict = JSON.parse(r.stdout) as { verdict: string; tls_spki_sha256: string; pcrs: Record<string, string> };
    assert.equal(verdict.verdict, 'pass');
    assert.equal(verdict.tls_spki_sha256, identity.spkiSha256Hex);
    assert.equal(verdict.pcrs[0], PCR0);
  });

  test('a wrong expected PCR fails, named', async () => {
    const r = await check(ingress.port, 'b2'.repeat(48));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL pcr_mismatch: PCR0 mismatch/);
  });

  test('a man in the middle relaying a genuine, fresh document is caught: the document binds another key', async () => {
    mitmMode = 'relay';
    const r = await check(mitmPort);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL binding_mismatch/);
  });

  test('a replayed document (an earlier nonce) is caught', async () => {
    mitmMode = 'replay';
    assert.ok(capturedDocument, 'the MITM captured a document in the previous case');
    const r = await check(mitmPort);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL nonce_mismatch/);
  });

  test("a document rewritten to bind the MITM's key is caught by its signature", async () => {
    mitmMode = 'rebind';
    const r = await check(mitmPort);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL bad_signature/);
  });

  test('undici with attestedConnector reaches the enclave and refuses the man in the middle', async () => {
    const verified: string[] = [];
    const dispatcher = new Agent({
      connect: attestedConnector({
        pcrs: new Map([[0, PCR0]]),
        root: fs.readFileSync(rootPath),
        onVerified: (p) => verified.push(`${p.evidence} ${p.spkiSha256}`),
      }),
    });
    try {
      const ok = await request(`https://127.0.0.1:${ingress.port}/hello`, { dispatcher });
      assert.deepEqual(await ok.body.json(), { url: '/hello', proto: 'https' });
      // No document in this certificate: the client fell back to the endpoint.
      assert.deepEqual(verified, [`endpoint ${identity.spkiSha256Hex}`]);
      mitmMode = 'relay';
      await assert.rejects(
        request(`https://127.0.0.1:${mitmPort}/hello`, { dispatcher }),
        (err: unknown) => err instanceof AttestationError && err.code === 'binding_mismatch',
      );
    } finally {
      await dispatcher.close();
    }
  });

  test('https.request with attestedHttpsAgent reaches the enclave and refuses the man in the middle', async () => {
    const agent = attestedHttpsAgent({ pcrs: new Map([[0, PCR0]]), root: fs.readFileSync(rootPath) });
    const get = (port: number) =>
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/agent', agent }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => {
              body += d.toString();
            });
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
    try {
      assert.deepEqual(JSON.parse(await get(ingress.port)), { url: '/agent', proto: 'https' });
      mitmMode = 'relay';
      await assert.rejects(get(mitmPort), (err: unknown) => err instanceof AttestationError && err.code === 'binding_mismatch');
    } finally {
      agent.destroy();
    }
  });

  test('Node apps get the client as the package export enclaver-proxy/attested-client', async () => {
    // A variable specifier: resolved by Node at run time through package.json "exports" (self-reference).
    const specifier = 'enclaver-proxy/attested-client';
    const lib = (await import(specifier)) as Record<string, unknown>;
    for (const name of ['attestedConnector', 'attestedHttpsAgent', 'verifyAttestedPeer', 'AttestationError'])
      assert.equal(typeof lib[name], 'function', name);
  });

  test('the endpoint wants a nonce, answers only GET, and rate-limits', async () => {
    const limited = await startIngress({
      clusters: new Map(),
      tls: () => identity.secureContext(),
      localEndpoints: [attestationEndpoint({ nsm, userData: identity.userData, rate: { perSecond: 0.001, burst: 2 } })],
    });
    try {
      const get = async (query: string, method: 'GET' | 'POST' = 'GET') =>
        (await request(`https://127.0.0.1:${limited.port}${ATTESTATION_WELL_KNOWN_PATH}${query}`, { dispatcher: insecure, method }))
          .statusCode;
      assert.equal(await get(''), 400);
      assert.equal(await get('?nonce=zz'), 400);
      assert.equal(await get(`?nonce=${'00'.repeat(16)}`, 'POST'), 405);
      assert.equal(await get(`?nonce=${'01'.repeat(16)}`), 200);
      assert.equal(await get(`?nonce=${'02'.repeat(16)}`), 200);
      assert.equal(await get(`?nonce=${'03'.repeat(16)}`), 429);
    } finally {
      await limited.close();
    }
  });
});
