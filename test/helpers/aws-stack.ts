/**
 * The AWS pieces wired together in one process for tests and the KMS benchmark: IMDS and KMS
 * emulators, the outer IMDS relay on emulated vsock, and the inner AWS services (simulated NSM).
 * The clock the credential store and IMDS emulator use can be moved forward to expire
 * credentials without waiting.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InnerAws, type KmsProxySettings } from '../../proxy-inner/aws-services.js';
import { Imdsv2Client } from '../../proxy-outer/imds-relay/imdsv2-client.js';
import { startImdsRelay } from '../../proxy-outer/imds-relay/relay-server.js';
import { type Listening, parseAddress } from '../../shared/transport/index.js';
import { configureVsock } from '../../shared/transport/vsock.js';
import { type Served, serveOnLoopback } from './serve.js';
import { CredentialStore } from '../emulators/credential-store.js';
import { ImdsEmulator } from '../emulators/imds/server.js';
import { KmsEmulator } from '../emulators/kms/server.js';
import { selfSignedLoopbackCertificate } from './tls.js';

export const TEST_REGION = 'eu-west-1';
export const TEST_PCR0 = 'a1'.repeat(48);

export interface AwsStack {
  dir: string;
  store: CredentialStore;
  imds: ImdsEmulator;
  kms: KmsEmulator;
  kmsUrl: string;
  tlsCa: string;
  inner: InnerAws;
  /** The inner services on loopback, as the app reaches them. */
  kmsProxy: Served;
  imdsEndpoint: Served;
  attestationApi: Served;
  /** Move the emulated wall clock of credential issuance/expiry forward. */
  advance(ms: number): void;
  close(): Promise<void>;
}

export interface AwsStackOptions {
  credentialLifetimeMs?: number;
  kms?: Partial<KmsProxySettings>;
}

export async function startAwsStack(opts: AwsStackOptions = {}): Promise<AwsStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-stack-'));
  let offset = 0;
  const now = () => Date.now() + offset;
  configureVsock({ emulationDir: dir });
  const store = new CredentialStore(now);
  const imds = new ImdsEmulator({ store, now, region: TEST_REGION, credentialLifetimeMs: opts.credentialLifetimeMs });
  const tls = selfSignedLoopbackCertificate();
  const rootPath = path.join(dir, 'nsm-root.pem');
  const kms = new KmsEmulator({ store, region: TEST_REGION, tls, attestationRoot: () => fs.readFileSync(rootPath, 'utf8') });
  const [imdsUrl, kmsUrl] = await Promise.all([imds.start(), kms.start()]);
  const relay: Listening = await startImdsRelay({
    address: parseAddress('vsock://any:17004'),
    client: new Imdsv2Client({ endpoint: imdsUrl }),
  });
  const inner = new InnerAws({
    nsm: { mode: 'simulator', simulator: { pcrs: new Map([[0, Buffer.from(TEST_PCR0, 'hex')]]), rootCertificatePath: rootPath } },
    imdsRelay: parseAddress('vsock://parent:17004'),
    now,
  });
  const [kmsProxy, imdsEndpoint, attestationApi] = await Promise.all([
    serveOnLoopback(inner.kmsRequestListener({ endpoint: kmsUrl, ca: tls.cert, ...opts.kms })),
    serveOnLoopback(inner.imdsRequestListener()),
    serveOnLoopback(inner.attestationRequestListener()),
  ]);
  return {
    dir,
    store,
    imds,
    kms,
    kmsUrl,
    tlsCa: tls.cert,
    inner,
    kmsProxy,
    imdsEndpoint,
    attestationApi,
    advance: (ms) => {
      offset += ms;
    },
    close: async () => {
      await Promise.all([kmsProxy.close(), imdsEndpoint.close(), attestationApi.close()]);
      await inner.close();
      await relay.close();
      await Promise.all([imds.stop(), kms.stop()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
