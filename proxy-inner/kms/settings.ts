/**
 * The KMS settings of a `kms` listener or a KMS-sealed TLS key, as the KMS proxy takes them: the
 * config slice with its extra CA read from the file. Kept apart from the proxy itself so that a
 * caller can build settings without loading the KMS and SigV4 code.
 */
import fs from 'node:fs';
import type { KmsEndpointConfig } from '../../shared/config/types.js';
import type { KmsProxySettings } from '../aws-services.js';

export function kmsSettings(kms: KmsEndpointConfig & Pick<KmsProxySettings, 'attestationReuseMs' | 'maxBodyBytes'>): KmsProxySettings {
  return { ...kms, ...(kms.caFile ? { ca: fs.readFileSync(kms.caFile, 'utf8') } : {}) };
}
