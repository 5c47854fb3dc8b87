/**
 * The AWS side of the inner proxy, assembled once per process: the NSM (device, or the loudly
 * announced simulator), the IMDS relay client and role credential cache, one recipient key, and
 * the request handlers of the KMS proxy, IMDS endpoint and attestation API that listeners serve.
 */
import type http from 'node:http';
import { messageOf } from '../shared/errors/index.js';
import { logger } from '../shared/log/logger.js';
import type { Address } from '../shared/transport/index.js';
import { attestationRequestListener } from './attestation-api/server.js';
import { CredentialCache } from './imds/credential-cache.js';
import { imdsRequestListener } from './imds/endpoint.js';
import { ImdsRelayClient } from './imds/relay-client.js';
import { AttestationSource } from './kms/attestation-source.js';
import { KmsProxy } from './kms/kms-proxy.js';
import { attestationReuseHits, credentialRefreshes } from './kms/metrics.js';
import { RecipientKey } from './kms/recipient-key.js';
import { KmsUpstream } from './kms/upstream.js';
import { type OpenNsmOptions, openNsm } from './nsm/index.js';
import type { Nsm } from './nsm/nsm.js';
import type { NsmSimulator } from './nsm/simulator.js';

const log = logger('aws');

export interface KmsProxySettings {
  /** Fixed KMS endpoint URL; `https://kms.<region>.amazonaws.com` otherwise. */
  endpoint?: string;
  /** Per-region endpoints (URL or HOST[:PORT]), which win over `endpoint`. */
  endpoints?: Record<string, string>;
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
  /** The clock credential expiry is judged by (Date.now; tests move it). */
  now?: () => number;
}

/** Where KMS requests for `region` go. */
export function kmsEndpointFor(kms: KmsProxySettings, region: string): URL {
  const configured = kms.endpoints?.[region] ?? kms.endpoint ?? `kms.${region}.amazonaws.com`;
  return new URL(/^https?:\/\//.test(configured) ? configured : `https://${configured}`);
}

export class InnerAws {
  private opened: { nsm: Nsm; simulator: NsmSimulator | null } | null = null;
  readonly relay: ImdsRelayClient;
  readonly credentials: CredentialCache;
  private recipientKey: RecipientKey | null = null;
  private readonly upstreams: KmsUpstream[] = [];

  constructor(private readonly settings: InnerAwsSettings) {
    this.relay = new ImdsRelayClient({ address: settings.imdsRelay });
    this.credentials = new CredentialCache(this.relay, {
      refreshMarginMs: settings.credentialRefreshMarginMs,
      now: settings.now,
      onRefresh: () => credentialRefreshes.inc(),
    });
  }

  /** Opened on first use, so an IMDS-only inner never announces a simulator it does not use. */
  private open(): { nsm: Nsm; simulator: NsmSimulator | null } {
    this.opened ??= openNsm(this.settings.nsm);
    return this.opened;
  }

  get nsm(): Nsm {
    return this.open().nsm;
  }

  get simulator(): NsmSimulator | null {
    return this.open().simulator;
  }

  region(): Promise<string> {
    return this.settings.region ? Promise.resolve(this.settings.region) : this.credentials.region();
  }

  /** The region for the app's environment: configured, or IMDS's; undefined (logged) if unknown. */
  async regionForApp(): Promise<string | undefined> {
    try {
      return await this.region();
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'region unknown (IMDS relay unavailable and aws.region not set); the app gets no AWS_REGION');
      return undefined;
    }
  }

  /** A KMS client as this enclave: attested, re-signed with the role's credentials. */
  kmsProxy(kms: KmsProxySettings): KmsProxy {
    // One RSA key per process, whatever the number of KMS users.
    this.recipientKey ??= new RecipientKey();
    const upstream = new KmsUpstream({ proxyUrl: kms.egressProxy, ca: kms.ca });
    this.upstreams.push(upstream);
    const attestation = new AttestationSource({
      nsm: this.nsm,
      publicKey: this.recipientKey.spkiDer,
      reuseMs: kms.attestationReuseMs ?? 0,
      onReuse: () => attestationReuseHits.inc(),
    });
    return new KmsProxy({
      endpointFor: (region) => kmsEndpointFor(kms, region),
      maxBodyBytes: kms.maxBodyBytes,
      upstream,
      recipientKey: this.recipientKey,
      attestation,
      credentials: async () => (await this.credentials.get()).credentials,
      region: () => this.region(),
    });
  }

  kmsRequestListener(kms: KmsProxySettings): http.RequestListener {
    return this.kmsProxy(kms).requestListener;
  }

  imdsRequestListener(): http.RequestListener {
    return imdsRequestListener({ cache: this.credentials, relay: this.relay, region: () => this.region(), now: this.settings.now });
  }

  attestationRequestListener(): http.RequestListener {
    return attestationRequestListener(this.nsm);
  }

  async close(): Promise<void> {
    this.credentials.close();
    await Promise.all(this.upstreams.map((u) => u.close()));
    this.opened?.nsm.close();
  }
}
