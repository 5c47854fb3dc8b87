/** Listener kinds of the inner side: config → the module that handles its connections. */
import fs from 'node:fs';
import type { ListenerConfig, SideConfig } from '../shared/config/types.js';
import { httpListenerKind } from '../shared/listener/http-kind.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';
import { PairPort } from '../shared/wire/ports.js';
import { VSOCK_CID_PARENT } from '../shared/transport/address.js';
import { InnerAws } from './aws-services.js';

/** The AWS services, when some listener needs them (KMS proxy, IMDS endpoint, attestation API). */
export function innerAws(config: SideConfig): InnerAws | null {
  if (!config.listeners.some((l) => l.kms || l.imds || l.attestationApi)) return null;
  return new InnerAws({
    nsm: {
      mode: config.nsm.mode,
      simulator: { pcrs: config.nsm.simulatorPcrs, rootCertificatePath: config.nsm.simulatorRootCertificatePath },
    },
    imdsRelay: { kind: 'vsock', cid: VSOCK_CID_PARENT, port: PairPort.Imds },
    region: config.aws.region,
    credentialRefreshMarginMs: config.aws.credentialRefreshMarginMs,
  });
}

export function innerListenerKinds(config: SideConfig, aws: InnerAws | null): (l: ListenerConfig) => ConnectionHandler {
  return (l) => {
    if (l.cluster !== undefined) return tcpProxy({ listener: l, cluster: config.clusters.get(l.cluster)! });
    if (aws && l.kms) {
      const k = l.kms;
      return httpListenerKind(aws.kmsRequestListener({
        endpoint: k.endpoint, endpoints: k.endpoints, egressProxy: k.egressProxy, attestationReuseMs: k.attestationReuseMs, maxBodyBytes: k.maxBodyBytes,
        ...(k.caFile ? { ca: fs.readFileSync(k.caFile, 'utf8') } : {}),
      }));
    }
    if (aws && l.imds) return httpListenerKind(aws.imdsRequestListener());
    if (aws && l.attestationApi) return httpListenerKind(aws.attestationRequestListener());
    throw new Error(`listener ${l.name} has no kind`);
  };
}
