/**
 * The attestation inside the certificate (`tls.embed_attestation`), on a real HTTP listener on
 * loopback with documents from the NSM simulator:
 *   - openssl (s_client, x509 -text) sees the extension under its OID, non-critical;
 *   - the undici connector accepts the enclave from the certificate alone (the listener has no
 *     attestation endpoint here, so a fallback request could not succeed) and refuses a man in the
 *     middle whose own certificate carries the enclave's genuine document (bound to another key);
 *   - the re-issue is driven by the document's own chain expiry on a simulated clock (the
 *     simulator and the certificate share it; the test fires the scheduled re-issue itself, no
 *     sleeping): new handshakes get a new certificate with a document from the NSM's next leaf,
 *     while a connection made before keeps working on the old one; a failed attestation keeps the
 *     old certificate and retries.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { AttestationError, attestedConnector, type AttestedPeer } from '../../../shared/attestation/client.js';
import { decodeCoseSign1 } from '../../../shared/attestation/cose.js';
import { parseAttestationDocument } from '../../../shared/attestation/document.js';
import { EMBEDDED_ATTESTATION_OID, embeddedAttestation } from '../../../shared/attestation/embedded.js';
import { spkiOf } from '../../../shared/attestation/tls-binding.js';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';
import {
  AttestedCertificate,
  documentChainExpiry,
  REISSUE_BEFORE_EXPIRY_MS,
  REISSUE_RETRY_MS,
  type ScheduleAt,
  selfSignedCertificate,
} from '../../../proxy-inner/tls/attested-certificate.js';
import { cluster, startIngress, type Ingress } from '../../helpers/http-ingress.js';
import { tempDir } from '../../helpers/process.js';

const PCR0 = 'c3'.repeat(48);

/** A scheduler the test fires by hand: the one pending re-issue, if any. */
function manualScheduler(): { schedule: ScheduleAt; pending: () => { at: number; run: () => void } | undefined } {
  let pending: { at: number; run: () => void } | undefined;
  return {
    schedule: (at, run) => {
      const entry = { at, run };
      pending = entry;
      return () => {
        if (pending === entry) pending = undefined;
      };
    },
    pending: () => pending,
  };
}

function run(cmd: string, args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** One TLS connection to the listener, left open; its peer certificate read once. */
function connect(port: number): Promise<{ socket: tls.TLSSocket; cert: crypto.X509Certificate }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      const cert = socket.getPeerX509Certificate();
      if (!cert) reject(new Error('no peer certificate'));
      else resolve({ socket, cert });
    });
  });
}

/** One GET over an open socket; resolves with the status line once a full response head arrived. */
function getOver(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(text.slice(0, text.indexOf('\r\n')));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write('GET /still-here HTTP/1.1\r\nhost: localhost\r\n\r\n');
  });
}

function leafOf(document: Buffer): Buffer {
  return parseAttestationDocument(decodeCoseSign1(document).payload).certificate;
}

describe('attested TLS with the document embedded in the certificate', () => {
  const dir = tempDir();
  const rootPath = path.join(dir, 'nsm-root.pem');
  // The simulated clock: the simulator's leaf validity and the re-issue schedule both read it.
  let clock = Date.now();
  const now = () => clock;
  const simulator = new NsmSimulator({ pcrs: new Map([[0, Buffer.from(PCR0, 'hex')]]), rootCertificatePath: rootPath, now });
  const nsm = new Nsm(simulator);
  let failAttestation = false;
  const flakyNsm = {
    attest: (req: Parameters<Nsm['attest']>[0]) => {
      if (failAttestation) throw new Error('simulated NSM failure');
      return nsm.attest(req);
    },
  };
  const timers = manualScheduler();
  const identity = new AttestedCertificate({ names: ['localhost', '127.0.0.1'], now, embed: { nsm: flakyNsm, schedule: timers.schedule } });
  const appPaths: string[] = [];
  let app: http.Server;
  let ingress: Ingress;

  before(async () => {
    app = http.createServer((req, res) => {
      appPaths.push(req.url ?? '');
      res.end(JSON.stringify({ url: req.url }));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    // No attestation endpoint on this listener: a client that asked for a document would get the app's JSON and fail.
    ingress = await startIngress({
      clusters: new Map([['app', cluster('app', (app.address() as net.AddressInfo).port)]]),
      defaultCluster: 'app',
      tls: () => identity.secureContext(),
      localEndpoints: [],
    });
  });

  after(async () => {
    identity.close();
    await ingress.close();
    app.closeAllConnections();
    await new Promise((r) => app.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const connector = (peers: AttestedPeer[], at?: Date) =>
    new Agent({
      connect: attestedConnector({
        pcrs: new Map([[0, PCR0]]),
        root: fs.readFileSync(rootPath),
        reuseMs: 0,
        onVerified: (p) => peers.push(p),
        ...(at ? { at } : {}),
      }),
    });

  test('openssl sees the attestation extension, non-critical, in the certificate the listener serves', async (t) => {
    const served = await run('openssl', ['s_client', '-connect', `127.0.0.1:${ingress.port}`, '-servername', 'localhost'], '');
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(served.stdout)?.[0];
    assert.ok(pem, `s_client printed the certificate: ${served.stderr}`);
    const text = await run('openssl', ['x509', '-noout', '-text'], pem);
    assert.equal(text.code, 0, text.stderr);
    t.diagnostic(
      text.stdout
        .split('\n')
        .filter((l) => l.includes('2.25.'))
        .join('\n'),
    );
    assert.match(text.stdout, new RegExp(`${EMBEDDED_ATTESTATION_OID.replace(/\./g, '\\.')}: *\\n`), 'the extension, without "critical"');
    assert.match(text.stdout, /DNS:localhost, IP Address:127\.0\.0\.1/);
    // The bytes in the extension are the document the inner holds, bound to the served key.
    const cert = new crypto.X509Certificate(pem);
    const embedded = embeddedAttestation(cert.raw);
    assert.ok(embedded && identity.embeddedDocument && embedded.equals(identity.embeddedDocument));
    assert.equal(crypto.createHash('sha256').update(spkiOf(cert)).digest('hex'), identity.spkiSha256Hex);
  });

  test('the client accepts the enclave from the certificate alone: no request for a document', async () => {
    const peers: AttestedPeer[] = [];
    const dispatcher = connector(peers);
    try {
      const before = appPaths.length;
      const r = await request(`https://127.0.0.1:${ingress.port}/hello`, { dispatcher });
      assert.deepEqual(await r.body.json(), { url: '/hello' });
      assert.deepEqual(
        peers.map((p) => [p.evidence, p.spkiSha256]),
        [['certificate', identity.spkiSha256Hex]],
      );
      assert.deepEqual(appPaths.slice(before), ['/hello'], 'the only request that reached the listener is the app request');
    } finally {
      await dispatcher.close();
    }
  });

  test("a man in the middle whose certificate carries the enclave's genuine document is refused: it binds another key", async () => {
    const genuine = identity.embeddedDocument;
    assert.ok(genuine);
    const keys = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = selfSignedCertificate({ ...keys, names: ['localhost', '127.0.0.1'], now: Date.now(), document: genuine });
    const mitm = tls.createServer({
      cert: new crypto.X509Certificate(der).toString(),
      key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    });
    mitm.on('secureConnection', (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    mitm.on('tlsClientError', () => {});
    await new Promise<void>((r) => mitm.listen(0, '127.0.0.1', r));
    const peers: AttestedPeer[] = [];
    const dispatcher = connector(peers);
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${(mitm.address() as net.AddressInfo).port}/hello`, { dispatcher }),
        (err: unknown) => err instanceof AttestationError && err.code === 'binding_mismatch',
      );
      assert.deepEqual(peers, []);
    } finally {
      await dispatcher.close();
      await new Promise((r) => mitm.close(r));
    }
  });

  test("the certificate is re-issued before its document's chain expires; new handshakes get it, open connections keep theirs", async () => {
    const old = await connect(ingress.port);
    try {
      const oldDocument = embeddedAttestation(old.cert.raw);
      assert.ok(oldDocument);
      const expiry = documentChainExpiry(oldDocument);
      const first = timers.pending();
      assert.ok(first, 'a re-issue is scheduled');
      assert.equal(first.at, expiry - REISSUE_BEFORE_EXPIRY_MS, 'scheduled from the chain expiry of the embedded document');
      assert.equal(identity.reissueAt, first.at);

      // Fire re-issues as the simulated clock reaches them, until the NSM signs with its next leaf
      // (at the first one its leaf still has ten minutes to go, so it keeps it; the retry a minute later gets the new one).
      let served = old.cert;
      for (let step = 0; step < 5 && leafOf(identity.embeddedDocument ?? oldDocument).equals(leafOf(oldDocument)); step++) {
        const due = timers.pending();
        assert.ok(due && due.at > clock && due.at < expiry, `step ${step}: the next re-issue is due before the expiry`);
        clock = due.at;
        due.run();
        const fresh = await connect(ingress.port);
        fresh.socket.destroy();
        assert.notEqual(fresh.cert.serialNumber, served.serialNumber, `step ${step}: a new handshake gets a new certificate`);
        served = fresh.cert;
      }
      const newDocument = embeddedAttestation(served.raw);
      assert.ok(newDocument && identity.embeddedDocument?.equals(newDocument), 'the served certificate carries the current document');
      assert.ok(!leafOf(newDocument).equals(leafOf(oldDocument)), "the new document is signed by the NSM's next leaf");
      assert.ok(documentChainExpiry(newDocument) > expiry, 'and expires later');
      assert.equal(parseAttestationDocument(decodeCoseSign1(newDocument).payload).timestamp, clock);
      assert.equal(
        timers.pending()?.at,
        documentChainExpiry(newDocument) - REISSUE_BEFORE_EXPIRY_MS,
        'the next re-issue follows the new document',
      );
      assert.equal(served.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'), identity.spkiDer.toString('hex'), 'same key');

      // The connection made before the re-issue still works, on the certificate it was handed.
      assert.equal(await getOver(old.socket), 'HTTP/1.1 200 OK');

      // The client verifies the new certificate's document at the simulated present.
      const peers: AttestedPeer[] = [];
      const dispatcher = connector(peers, new Date(clock));
      try {
        const r = await request(`https://127.0.0.1:${ingress.port}/after`, { dispatcher });
        assert.equal(r.statusCode, 200);
        await r.body.dump();
        assert.equal(peers[0]?.evidence, 'certificate');
        assert.equal(peers[0]?.document.timestamp, clock);
      } finally {
        await dispatcher.close();
      }
    } finally {
      old.socket.destroy();
    }
  });

  test('a failed attestation keeps the certificate in use and retries a minute later', async () => {
    const before = await connect(ingress.port);
    before.socket.destroy();
    const due = timers.pending();
    assert.ok(due);
    clock = due.at;
    failAttestation = true;
    try {
      due.run();
    } finally {
      failAttestation = false;
    }
    const after = await connect(ingress.port);
    after.socket.destroy();
    assert.equal(after.cert.serialNumber, before.cert.serialNumber, 'the certificate in use stays');
    assert.equal(timers.pending()?.at, clock + REISSUE_RETRY_MS);
  });
});
