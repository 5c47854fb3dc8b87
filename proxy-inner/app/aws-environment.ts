/**
 * What the app's AWS SDK needs to use the inner AWS services unmodified: the IMDS endpoint for
 * credentials and region, the KMS endpoint override, and the region when the config fixes it.
 */
import type { InnerConfig } from '../../shared/config/types.js';
import { formatHostPort, type Address } from '../../shared/transport/address.js';

function httpUrl(a: Address): string | undefined {
  if (a.kind !== 'tcp') return undefined;
  return `http://${formatHostPort(a.host, a.port)}`;
}

/**
 * `listeners` are the started ones, whose addresses carry the real port when 0 was configured;
 * `region` is the configured one or what IMDS said.
 */
export function awsAppEnvironment(
  config: InnerConfig,
  listeners: { name: string; address: Address }[],
  region: string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  const bound = (name: string) => listeners.find((l) => l.name === name)?.address;
  const imds = config.listeners.find((l) => l.kind === 'imds');
  const kms = config.listeners.find((l) => l.kind === 'kms');
  const imdsUrl = imds && httpUrl(bound(imds.name) ?? imds.address);
  const kmsUrl = kms && httpUrl(bound(kms.name) ?? kms.address);
  if (imdsUrl) env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imdsUrl;
  if (kmsUrl) env.AWS_ENDPOINT_URL_KMS = kmsUrl;
  if (region && (imdsUrl || kmsUrl)) {
    env.AWS_REGION = region;
    env.AWS_DEFAULT_REGION = region;
  }
  return env;
}
