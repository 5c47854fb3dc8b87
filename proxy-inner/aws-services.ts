/**
 * The AWS side of the inner proxy, assembled: the NSM (device or loudly-announced simulator),
 * the IMDS relay client and role credential cache, and whichever of the KMS proxy, IMDS
 * endpoint and attestation API the config asks for. One recipient key per process.
 */
import type { Address } from '../shared/transport/index.js';
import type { HttpService } from '../shared/util/http-service.js';
import { startAttestationApi } from './attestation-api/server.js';
import { CredentialCache } from './imds/credential-cache.js';
import { startImdsEndpoint } from './imds/endpoint.js';
import { ImdsRelayClient } from './imds/relay-client.js';
import { AttestationSource } from './kms/attestation-source.js';
import { KmsProxy } from './kms/kms-proxy.js';
import { attestationReuseHits, credentialRefreshes } from './kms/metrics.js';
import { RecipientKey } from './kms/recipient-key.js';
import { KmsUpstream } from './kms/upstream.js';
import { type OpenNsmOptions, openNsm } from './nsm/index.js';
import type { Nsm } from './nsm/nsm.js';
import type { NsmSimulator } from './nsm/simulator.js';

export interface KmsProxySettings {
  address: Address;
  /** Fixed KMS endpoint URL; `https://kms.<region>.amazonaws.com` otherwise. */
  endpoint?: string;
  /** The inner egress proxy the KMS connection is tunnelled through (HTTP CONNECT). */
  egressProxy?: string;
  /** Extra CA (PEM) trusted for the KMS endpoint. */
  ca?: string;
  attestationReuseMs?: number;
  maxBodyBytes?: number;
}

export interface InnerAwsSettings {
  nsm: OpenNsmOptions;
  /** The outer IMDS relay, normally vsock://parent:17004. */
  imdsRelay: Address;
  /** Fixed region; asked of IMDS otherwise. */
  region?: string;
  credentialRefreshMarginMs?: number;
  kms?: KmsProxySettings;
  imds?: { address: Address };
  attestationApi?: { address: Address };
  /** The clock credential expiry is judged by (Date.now; tests move it). */
  now?: () => number;
}

export interface InnerAwsServices {
  nsm: Nsm;
  simulator: NsmSimulator | null;
  credentials: CredentialCache;
  kms: HttpService | null;
  imds: HttpService | null;
  attestationApi: HttpService | null;
  close(): Promise<void>;
}

export async function startInnerAwsServices(settings: InnerAwsSettings): Promise<InnerAwsServices> {
  const { nsm, simulator } = openNsm(settings.nsm);
  const relay = new ImdsRelayClient({ address: settings.imdsRelay });
  const credentials = new CredentialCache(relay, { refreshMarginMs: settings.credentialRefreshMarginMs, now: settings.now, onRefresh: () => credentialRefreshes.inc() });
  const region = settings.region ? () => Promise.resolve(settings.region!) : () => credentials.region();
  const started: HttpService[] = [];
  let upstream: KmsUpstream | null = null;
  const close = async () => {
    credentials.close();
    await Promise.all(started.map((s) => s.close()));
    await upstream?.close();
    nsm.close();
  };
  try {
    let kms: HttpService | null = null;
    if (settings.kms) {
      const recipientKey = new RecipientKey();
      upstream = new KmsUpstream({ proxyUrl: settings.kms.egressProxy, ca: settings.kms.ca });
      const attestation = new AttestationSource({ nsm, publicKey: recipientKey.spkiDer, reuseMs: settings.kms.attestationReuseMs ?? 0, onReuse: () => attestationReuseHits.inc() });
      kms = await new KmsProxy({
        address: settings.kms.address, endpoint: settings.kms.endpoint, maxBodyBytes: settings.kms.maxBodyBytes,
        credentials: async () => (await credentials.get()).credentials, region, upstream, recipientKey, attestation,
      }).start();
      started.push(kms);
    }
    const imds = settings.imds ? await startImdsEndpoint({ address: settings.imds.address, cache: credentials, relay }) : null;
    if (imds) started.push(imds);
    const attestationApi = settings.attestationApi ? await startAttestationApi({ address: settings.attestationApi.address, nsm }) : null;
    if (attestationApi) started.push(attestationApi);
    return { nsm, simulator, credentials, kms, imds, attestationApi, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** What the supervised app needs in its environment to use these services unmodified. */
export function appEnvironment(services: InnerAwsServices, region?: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (services.imds) env.AWS_EC2_METADATA_SERVICE_ENDPOINT = services.imds.url;
  if (services.kms) env.AWS_ENDPOINT_URL_KMS = services.kms.url;
  if (region) env.AWS_REGION = region;
  return env;
}
