/**
 * The environment the app is started with. Proxy variables point at the inner egress listener so
 * that anything honouring HTTP(S)_PROXY / ALL_PROXY egresses through policy; both spellings are
 * set because tools disagree on case (curl reads lower-case http_proxy only).
 */
export interface AppEnvironmentInputs {
  /** `http://127.0.0.1:10000` when an egress listener speaks HTTP. */
  egressProxyUrl?: string;
  /** ALL_PROXY: `socks5h://127.0.0.1:10000` when the egress listener speaks SOCKS5, else the HTTP URL. */
  allProxyUrl?: string;
  /** Extra variables from config (`app.env`), which win over everything else. */
  configured: Record<string, string>;
  /** AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_ENDPOINT_URL_KMS, AWS_REGION for the inner AWS services. */
  aws?: Record<string, string>;
}

export const NO_PROXY = 'localhost,127.0.0.1,::1';

export function appEnvironment(base: NodeJS.ProcessEnv, inputs: AppEnvironmentInputs): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    // The inner's own settings are not the app's business.
    if (v !== undefined && !k.startsWith('ENCLAVER_')) env[k] = v;
  }
  const urls: Array<[string, string | undefined]> = [
    ['HTTP_PROXY', inputs.egressProxyUrl],
    ['HTTPS_PROXY', inputs.egressProxyUrl],
    ['ALL_PROXY', inputs.allProxyUrl],
  ];
  for (const [name, url] of urls) {
    if (!url) continue;
    env[name] = url;
    env[name.toLowerCase()] = url;
  }
  env.NO_PROXY = NO_PROXY;
  env.no_proxy = NO_PROXY;
  return { ...env, ...inputs.aws, ...inputs.configured };
}
