/**
 * KMS benchmark: Decrypt round trips per second and latency through the attested KMS proxy
 * (attestation, Recipient injection, SigV4 re-signing, TLS upstream, CMS decryption) against
 * calling the same KMS emulator directly, in one run, with and without attestation reuse.
 *
 *   npm run bench:kms [-- --requests 400 --concurrency 8]
 *
 * Added latency is each row's p50/p99 minus the plain direct call's. The emulator runs in this
 * process and verifies every attestation document (as KMS does), so attested rows include that
 * work; "direct, app attests itself" is the same attested call made by the app without the
 * proxy, and the gap between it and the proxy rows is the proxy's own cost.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { RecipientKey } from '../proxy-inner/kms/recipient-key.js';
import { serveOnLoopback } from '../test/helpers/serve.js';
import { TEST_PCR0, TEST_REGION, startAwsStack } from '../test/helpers/aws-stack.js';
import { benchOptions } from './lib/options.js';

interface Figures {
  label: string;
  requests: number;
  concurrency: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(label: string, call: () => Promise<unknown>, requests: number, concurrency: number): Promise<Figures> {
  for (let i = 0; i < 20; i++) await call();
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        const t0 = process.hrtime.bigint();
        await call();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return { label, requests, concurrency, rps: requests / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

async function main(): Promise<void> {
  const { requests, concurrency } = benchOptions('npm run bench:kms', 'Attested KMS calls through the inner: requests/s and latency.', {
    requests: { default: 400, help: 'KMS requests per run' },
    concurrency: { default: 8, help: 'requests in parallel' },
  });
  const stack = await startAwsStack();
  const reuse = await serveOnLoopback(
    stack.inner.kmsRequestListener({ endpoint: stack.kmsUrl, ca: stack.tlsCa, attestationReuseMs: 60_000 }),
  );
  try {
    const keyId = stack.kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: TEST_PCR0 } });
    const direct = new KMSClient({
      region: TEST_REGION,
      endpoint: stack.kmsUrl,
      maxAttempts: 1,
      credentials: stack.store.issue(3600_000),
      requestHandler: { httpsAgent: new https.Agent({ ca: stack.tlsCa, keepAlive: true }) },
    });
    const appCredentials = { accessKeyId: 'AKIDAPP', secretAccessKey: 'app' };
    const viaProxy = new KMSClient({ region: TEST_REGION, endpoint: stack.kmsProxy.url, credentials: appCredentials, maxAttempts: 1 });
    const viaProxyReuse = new KMSClient({ region: TEST_REGION, endpoint: reuse.url, credentials: appCredentials, maxAttempts: 1 });
    const { CiphertextBlob } = await direct.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('a 32-byte data key, more or less') }),
    );

    const decrypt = (client: KMSClient) => () => client.send(new DecryptCommand({ CiphertextBlob }));
    // What an app without the proxy has to do for the same attested result (as sdk-c's kmstool does).
    const ownKey = new RecipientKey();
    const attestedDirect = async () => {
      const Recipient = {
        KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const,
        AttestationDocument: stack.inner.nsm.attest({ publicKey: ownKey.spkiDer }),
      };
      const out = await direct.send(new DecryptCommand({ CiphertextBlob, Recipient }));
      return ownKey.open(Buffer.from(out.CiphertextForRecipient!));
    };
    const rows: Figures[] = [];
    for (const c of [1, concurrency]) {
      rows.push(await measure('direct, no attestation', decrypt(direct), requests, c));
      rows.push(await measure('direct, app attests itself', attestedDirect, requests, c));
      rows.push(await measure('proxy, fresh attestation', decrypt(viaProxy), requests, c));
      rows.push(await measure('proxy, attestation reuse 60s', decrypt(viaProxyReuse), requests, c));
    }
    const lines = [
      `KMS Decrypt, ${requests} requests per row (node ${process.version}, ${process.platform}-${process.arch})`,
      'concurrency  path                            req/s     p50 ms   p99 ms   added p50  added p99',
    ];
    for (const r of rows) {
      const base = rows.find((d) => d.concurrency === r.concurrency && d.label === 'direct, no attestation')!;
      lines.push(
        `${String(r.concurrency).padStart(11)}  ${r.label.padEnd(30)} ${r.rps.toFixed(0).padStart(6)}  ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)}   ${(r.p50Ms - base.p50Ms).toFixed(2).padStart(8)}  ${(r.p99Ms - base.p99Ms).toFixed(2).padStart(8)}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    const out = path.resolve('benchmarks/results');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, `kms-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(rows, null, 2));
    for (const c of [direct, viaProxy, viaProxyReuse]) c.destroy();
  } finally {
    await reuse.close();
    await stack.close();
  }
}

await main();
